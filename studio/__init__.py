"""Studio: fine-tune an instruct LLM with LoRA into a text classifier, from the browser or the command line.

The engine (data, config, train, evaluate, export) never imports Gradio; ``studio.ui`` is a thin layer on top.
"""

__version__ = "0.1.0"
