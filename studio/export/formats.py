"""Export formats (a light module: the CLI lists them without importing torch)."""

FORMATS = ["adapters", "merged_16bit", "merged_4bit", "gguf_f16", "gguf_q8_0", "gguf_q4_k_m"]
FORMAT_HELP = {
    "adapters": "LoRA adapter only (small); needs the base model to run",
    "merged_16bit": "adapter merged into the base weights, float16: one standalone transformers model",
    "merged_4bit": "merged and quantised to 4-bit with bitsandbytes (CUDA only)",
    "gguf_f16": "GGUF for llama.cpp / Ollama, 16-bit",
    "gguf_q8_0": "GGUF 8-bit: near-lossless, half the size",
    "gguf_q4_k_m": "GGUF 4-bit k-quant: smallest; check its agreement figure",
}
