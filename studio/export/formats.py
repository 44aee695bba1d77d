"""Export formats (a light module: the CLI lists them and the page checks what this machine can build, without
importing torch)."""

from studio.export.gguf import converter_dir
from studio.machine import device_guess, has_module

FORMATS = ["classifier", "adapters", "merged_16bit", "merged_4bit", "gguf_f16", "gguf_q8_0", "gguf_q4_k_m"]
FORMAT_TITLES = {"classifier": "Classifier (ready to use)", "adapters": "LoRA adapter",
                 "merged_16bit": "Merged model, 16-bit", "merged_4bit": "Merged model, 4-bit (GPU)",
                 "gguf_f16": "GGUF, 16-bit", "gguf_q8_0": "GGUF, 8-bit", "gguf_q4_k_m": "GGUF, 4-bit"}
FORMAT_HELP = {
    "classifier": "the run's classifier in use (fine-tuned LLM, classic model or their blend) in one folder: "
                  "Classifier.load, python -m studio predict / serve; needs the studio and the base model",
    "adapters": "LoRA adapter only (small); needs the base model to run",
    "merged_16bit": "adapter merged into the base weights, float16: one standalone transformers model",
    "merged_4bit": "merged and quantised to 4-bit with bitsandbytes (CUDA only)",
    "gguf_f16": "GGUF for llama.cpp / Ollama, 16-bit",
    "gguf_q8_0": "GGUF 8-bit: near-lossless, half the size",
    "gguf_q4_k_m": "GGUF 4-bit k-quant: smallest; check its agreement figure",
}


def unavailable(fmt: str) -> str | None:
    """Why this machine cannot build ``fmt`` now, and what to do (None: it can)."""
    if fmt == "merged_4bit" and (device_guess() != "cuda" or not has_module("bitsandbytes")):
        return ("needs an NVIDIA GPU with bitsandbytes (pip install -r requirements-gpu.txt); here, merged_16bit or "
                "gguf_q4_k_m give a standalone model")
    if fmt.startswith("gguf"):
        if not has_module("llama_cpp"):
            return ("needs llama.cpp: pip install -r requirements-gguf.txt (about 5 minutes), then python -m studio "
                    "setup-gguf")
        if not (converter_dir() / "convert_hf_to_gguf.py").exists():
            return "needs llama.cpp's converter once: python -m studio setup-gguf"
    return None
