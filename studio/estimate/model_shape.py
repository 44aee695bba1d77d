"""A model's shape (the numbers that decide its memory) read from its config alone, never its weights.

Sources, in order: a local folder's config.json, the hub's config.json (one small file), and for the embedded
default and the curated models a built-in copy of the published config's numbers, so the estimate also works
offline (a live demo without internet).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from studio.config import EMBEDDED_MODEL
from studio.errors import StudioError
from studio.machine import import_stack


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool
    head_dim: int = 0  # 0: hidden_size // num_attention_heads
    attention_bias: bool = True  # Qwen2 has q/k/v biases; Llama and Qwen3 do not
    source: str = ""  # where the numbers came from, shown beside the estimate

    @property
    def head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def projections(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer in one decoder layer."""
        h, i, q, kv = self.hidden_size, self.intermediate_size, self.num_attention_heads * self.head, \
            self.num_key_value_heads * self.head
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def linear_params(self) -> int:
        return self.num_hidden_layers * sum(a * b for a, b in self.projections().values())

    @property
    def other_params(self) -> int:
        """Embeddings (and an untied LM head), norms and biases: kept in 16-bit when the linears are 4-bit."""
        p = self.projections()
        bias = (p["q_proj"][1] + 2 * p["k_proj"][1]) if self.attention_bias else 0
        per_layer = 2 * self.hidden_size + bias
        heads = 1 if self.tie_word_embeddings else 2
        return heads * self.vocab_size * self.hidden_size + self.num_hidden_layers * per_layer + self.hidden_size

    @property
    def params(self) -> int:
        return self.linear_params + self.other_params

    def to_dict(self) -> dict:
        return {**asdict(self), "params": self.params}


def _qwen2(h, i, layers, heads, kv, vocab=151936, tied=True) -> dict:
    return dict(hidden_size=h, intermediate_size=i, num_hidden_layers=layers, num_attention_heads=heads,
                num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tied)


def _qwen3(h, i, layers, heads, kv) -> dict:
    return {**_qwen2(h, i, layers, heads, kv), "head_dim": 128, "attention_bias": False}


# The published config.json numbers of the embedded default and the curated models.
KNOWN_SHAPES: dict[str, dict] = {
    "SmolLM2-135M-Instruct": {**_qwen2(576, 1536, 30, 9, 3, vocab=49152), "attention_bias": False},
    "Qwen2.5-0.5B-Instruct": _qwen2(896, 4864, 24, 14, 2),
    "Qwen2.5-1.5B-Instruct": _qwen2(1536, 8960, 28, 12, 2),
    "Qwen2.5-3B-Instruct": _qwen2(2048, 11008, 36, 16, 2),
    "Qwen2.5-7B-Instruct": _qwen2(3584, 18944, 28, 28, 4, vocab=152064, tied=False),
    "Qwen2.5-14B-Instruct": _qwen2(5120, 13824, 48, 40, 8, vocab=152064, tied=False),
    "Qwen3-0.6B": _qwen3(1024, 3072, 28, 16, 8),
    "Qwen3-1.7B": _qwen3(2048, 6144, 28, 16, 8),
    "Qwen3-4B-Instruct-2507": _qwen3(2560, 9728, 36, 32, 8),
}


KNOWN_ORGS = ("embedded", "Qwen", "unsloth", "HuggingFaceTB")


def known_shape(name: str) -> ModelShape | None:
    """The built-in shape for the embedded default, a curated hub id or its unsloth/…-bnb-4bit twin."""
    org, _, base = name.replace("embedded:", "embedded/").rstrip("/").rpartition("/")
    if org not in KNOWN_ORGS:
        return None
    for suffix in ("-unsloth-bnb-4bit", "-bnb-4bit"):
        base = base.removesuffix(suffix)
    numbers = KNOWN_SHAPES.get(base)
    return ModelShape(**numbers, source=f"built-in numbers for {base}") if numbers else None


def shape_from_config(config, source: str = "") -> ModelShape:
    """From a transformers PretrainedConfig (or anything with the same attributes)."""
    text = getattr(config, "text_config", None) or config  # multimodal wrappers keep the LM's numbers inside
    try:
        h = int(text.hidden_size)
        heads = int(text.num_attention_heads)
        return ModelShape(
            hidden_size=h, intermediate_size=int(text.intermediate_size),
            num_hidden_layers=int(text.num_hidden_layers), num_attention_heads=heads,
            num_key_value_heads=int(getattr(text, "num_key_value_heads", None) or heads),
            vocab_size=int(text.vocab_size),
            tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", getattr(text, "tie_word_embeddings",
                                                                                     False))),
            head_dim=int(getattr(text, "head_dim", 0) or 0),
            attention_bias=bool(getattr(text, "attention_bias", getattr(text, "model_type", "") == "qwen2")),
            source=source)
    except (AttributeError, TypeError, ValueError) as exc:
        raise StudioError(f"The model's config lacks a number the memory estimate needs ({exc}); the estimate "
                          "covers decoder-only language models (Qwen, Llama, Mistral, SmolLM...).") from None


def pre_quantized_4bit(config) -> bool:
    """A checkpoint saved already in 4-bit (e.g. unsloth/…-bnb-4bit) loads in 4-bit whatever the form says."""
    quant = getattr(config, "quantization_config", None) or {}
    quant = quant if isinstance(quant, dict) else quant.to_dict()
    return bool(quant.get("load_in_4bit") or quant.get("_load_in_4bit"))


def read_shape(name: str) -> tuple[ModelShape, bool]:
    """(shape, pre-quantized 4-bit) of a local folder, a hub id, or the embedded default; reads only config.json."""
    name = (name or "").strip() or EMBEDDED_MODEL
    if name.startswith("embedded:"):
        return known_shape(name), False
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise StudioError(f"{path} has no config.json, so it is not a model folder.")
        import_stack()  # a page request, perhaps while a training thread imports transformers too
        from transformers import AutoConfig  # (after unsloth's patches)

        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise StudioError(f"Could not read {path}/config.json ({str(exc).splitlines()[0]}).") from None
        return shape_from_config(config, f"{path}/config.json"), pre_quantized_4bit(config)
    known = known_shape(name)
    if known is not None:  # the published numbers: no network needed (a live demo offline)
        return known, name.endswith("bnb-4bit")
    if not hub_reachable():
        raise StudioError(f"Cannot read the config of '{name}': the model hub is not reachable from here. Pick a "
                          "local folder or a listed model, or check the internet connection.")
    try:
        from transformers import AutoConfig  # (after unsloth's patches)

        config = AutoConfig.from_pretrained(name)
        return shape_from_config(config, f"{name} config.json (hub)"), pre_quantized_4bit(config)
    except (OSError, ValueError) as exc:
        raise StudioError(f"Could not read the config of '{name}' ({str(exc).splitlines()[0]}). Check the name "
                          "and your internet connection, or pick a local folder or a listed model.") from None


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection, so an offline machine answers at once instead of after the hub client's retries."""

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False
