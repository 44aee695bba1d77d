"""Studio: fine-tune an instruct LLM with LoRA into a text classifier, from the browser or the command line.

The engine (data, config, train, evaluate, export) never imports Gradio; ``studio.ui`` is a thin layer on top.
"""

__version__ = "0.1.0"

__all__ = ["Classifier"]


def __getattr__(name: str):
    """``from studio import Classifier`` without loading the engine at ``import studio`` (the CLI starts fast)."""
    if name == "Classifier":
        from studio.door.classifier import Classifier  # (the classifier's stack: only when it is asked for)

        return Classifier
    raise AttributeError(f"module 'studio' has no attribute {name!r}")
