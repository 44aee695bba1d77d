""""Will it fit?": the peak GPU memory a run will reserve, estimated from the model's config and the run config
before anything is loaded, with the guide's bands and levers.

What is estimated is PyTorch's peak reserved memory (``torch.cuda.max_memory_reserved``, the number the guide's
notebook prints), the sum of:

- base weights: every parameter at 2 bytes (4 in float32), or the linear layers at 4.13 bits (NF4 + its double-
  quantised scales) with embeddings, LM head, norms and biases in 16-bit when ``load_in_4bit``;
- buffers present before the first step (rotary caches and the like);
- the LoRA adapter: fp32 weights (PEFT keeps adapters in float32) + fp32 gradients + optimizer state;
- activations of the largest micro-batch: a per-token cost that grows with layers × hidden size (the saved layer
  inputs) and hidden + intermediate size (one layer's recompute), more without gradient checkpointing (every
  layer's, per token × layers × (16.6 × hidden + 3.6 × intermediate) bytes); the micro-batch counted as its rows
  padded to its longest (the studio trains rows, not packed sequences: studio/train/sft.py);
- the answer's logits: per row × vocabulary (fp32 logits, their softmax and gradients at the answer positions);
- a fixed step workspace, and on real data (rows of different lengths, so a new padded width at most steps) a
  fixed 0.33 GiB more.

The per-token and fixed coefficients are fitted to 36 real studio runs on an H100 (the Unsloth backend; Qwen2.5
0.5B and 1.5B shapes, 4/16-bit, r 16/32/64, batch 1–16, 256–2048 tokens, rows of one length); the no-checkpointing
and logits terms to single micro-batches of the SmolLM2-135M and Qwen2.5-0.5B shapes at 128–512 tokens × 64 rows
(bench/device/attention_memory.py), and the real-data part to the defaults on three real datasets on an H200
(docs/benchmarks.md, "Real weights on a GPU"). PyTorch's allocator uses expandable segments in a studio run
(studio.machine): without them the same real-data runs reserved up to twice what they allocated. Then a 3% margin
is added because an estimate that is too low means an OOM. The CUDA context (about 0.7 GiB, outside PyTorch's count)
is added before comparing with the card's memory.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, field

from studio.config import ATTENTION_ONLY, LoraSpec, RunConfig, effective_checkpointing
from studio.config import four_bit as four_bit_setting
from studio.errors import StudioError
from studio.estimate.model_shape import ModelShape, read_shape
from studio.estimate.recipe import resolve
from studio.machine import has_module

GIB = 2**30
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit values + 8-bit absmax per 64 + fp32 per 256 blocks
BUFFERS_GIB = 0.065  # measured before the first step beyond weights + adapter, constant across shapes
STEP_FIXED_GIB = 0.082
SAVED_INPUT_BYTES = 1.32  # per token × layers × hidden
LAYER_WORKING_BYTES = 5.17  # per token × (hidden + intermediate)
PLAIN_CHECKPOINT_BYTES = 1.9  # gradient checkpointing "true": + per token × layers × hidden
NO_CHECKPOINT_HIDDEN_BYTES = 16.6  # no checkpointing: + per token × layers × hidden ...
NO_CHECKPOINT_INTERMEDIATE_BYTES = 3.6  # ... + per token × layers × intermediate (docs/benchmarks.md)
MLP_WITHOUT_LORA_BYTES = 5.0  # MLP not LoRA-targeted: + per token × intermediate (gate/up/act kept in bf16)
OPTIMIZER_BYTES = {"adamw_8bit": 2, "paged_adamw_8bit": 2, "adamw_torch": 10, "adamw_torch_fused": 8, "sgd": 0}
MARGIN = 1.03
VARIED_WIDTHS_GIB = 0.33  # real data: micro-batches of changing padded widths keep more (docs/benchmarks.md)
ANSWER_LOGITS_BYTES = 68.0  # per micro-batch row × vocabulary: the answer's logits in fp32, softmax and gradients
# transformers + peft (no Unsloth), fitted to 4 runs of the 0.5B shape: activations cost this many times Unsloth's
# per token (16-bit / 4-bit); with a 4-bit base, peft's k-bit preparation keeps the non-quantised weights in fp32
# and the adapter in bf16; the
# estimate gets a wider margin because it rests on one shape.
TRANSFORMERS_ACTIVATION_FACTOR = {16: 2.5, 4: 4.0}
TRANSFORMERS_MARGIN = 1.08
CUDA_CONTEXT_GIB = 0.67  # the CUDA context: used − reserved after cuBLAS is loaded (docs/benchmarks.md)
BANDS = ((0.95, "likely OOM"), (0.90, "close"))  # the guide: > 90% close, > 95% likely to OOM
MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass
class Estimate:
    parts: dict[str, float]  # GiB, before the margin
    peak_reserved_gb: float
    tokens_per_micro_batch: int
    backend: str
    shape: ModelShape
    gpu_name: str | None = None
    gpu_total_gb: float | None = None
    context_gb: float = CUDA_CONTEXT_GIB
    notes: list[str] = field(default_factory=list)
    pre_quantized: bool = False  # the checkpoint is saved in 4-bit: every variant loads in 4-bit
    config: RunConfig | None = None  # the settings estimated (auto micro-batch, checkpointing and 4-bit decided)
    four_bit: bool = False  # the base weights estimated in 4-bit

    @property
    def needed_gb(self) -> float:
        return self.peak_reserved_gb + self.context_gb

    @property
    def share(self) -> float | None:
        return self.needed_gb / self.gpu_total_gb if self.gpu_total_gb else None

    @property
    def verdict(self) -> str:
        if self.share is None:
            return "no GPU to compare with"
        if self.share > 1:
            return "will not fit"
        for limit, name in BANDS:
            if self.share > limit:
                return name
        return "fits"

    def to_dict(self) -> dict:
        return {"peak_reserved_gb": round(self.peak_reserved_gb, 3), "needed_gb": round(self.needed_gb, 3),
                "parts_gb": {k: round(v, 3) for k, v in self.parts.items()}, "context_gb": self.context_gb,
                "tokens_per_micro_batch": self.tokens_per_micro_batch, "backend": self.backend,
                "gpu_name": self.gpu_name, "gpu_total_gb": self.gpu_total_gb,
                "share": None if self.share is None else round(self.share, 4), "verdict": self.verdict,
                "shape": self.shape.to_dict(), "notes": self.notes,
                "micro_batch": self.config.train.per_device_train_batch_size if self.config else None,
                "checkpointing": self.config.lora.use_gradient_checkpointing if self.config else None,
                "load_in_4bit": self.four_bit}

    def summary(self) -> str:
        line = f"≈ {self.peak_reserved_gb:.2f} GiB peak reserved + {self.context_gb:.2f} GiB CUDA context"
        if self.gpu_total_gb:
            line += (f" = {self.needed_gb:.2f} of {self.gpu_total_gb:.1f} GiB ({100 * self.share:.0f}%): "
                     f"{self.verdict}")
        return line


def micro_batch_tokens(batch: int, max_seq_length: int, lengths: list[int] | None = None,
                       padding_free: bool = False, packing: bool = False) -> int:
    """Tokens in the largest micro-batch: batch × the longest row (the studio pads each micro-batch's rows to its
    longest), or the batch's longest rows when ``padding_free``; batch × max_seq_length when packing or when the
    lengths are unknown."""
    if packing or not lengths:
        return batch * max_seq_length
    if not padding_free:  # (the recipe's search calls this for every candidate: no sort where the longest will do)
        return batch * min(max(lengths), max_seq_length)
    longest = sorted(min(n, max_seq_length) for n in lengths)[-batch:]
    return sum(longest)


def lora_params(shape: ModelShape, r: int, targets: list[str]) -> int:
    projections = shape.projections()
    return shape.num_hidden_layers * sum(r * sum(projections[t]) for t in targets if t in projections)


def vram_share(config: RunConfig, shape: ModelShape, lengths: list[int] | None, backend: str, gpu_name: str | None,
               gpu_total_gb: float | None, loads_4bit=lambda chosen: chosen):
    """``share(micro_batch, checkpointing, four_bit) -> share of the GPU`` that ``config`` takes with those settings,
    for the recipe's auto settings; ``loads_4bit(four_bit)``: whether the weights then load in 4-bit (a pre-quantized
    model always does; without bitsandbytes none does)."""
    def share(batch: int, checkpointing: str, four_bit: bool) -> float:
        trial = config.replace({"train": {"per_device_train_batch_size": batch},
                                "lora": {"use_gradient_checkpointing": checkpointing},
                                "model": {"load_in_4bit": str(four_bit).lower()}})
        return estimate_vram(trial, shape, lengths=lengths, backend=backend, load_in_4bit=loads_4bit(four_bit),
                             gpu_total_gb=gpu_total_gb, gpu_name=gpu_name).share

    return share


def estimate_vram(config: RunConfig, shape: ModelShape, *, lengths: list[int] | None = None,
                  backend: str = "unsloth", load_in_4bit: bool | None = None, gpu_total_gb: float | None = None,
                  gpu_name: str | None = None) -> Estimate:
    """The estimate for ``config`` on a model of ``shape``; ``lengths`` are the formatted rows' token counts. A
    micro-batch or checkpointing left on auto is decided first, as the run will (the largest that fits)."""
    if config.train.per_device_train_batch_size == 0 or config.lora.use_gradient_checkpointing == "auto" or \
            four_bit_setting(config.model) is None:
        share = vram_share(config, shape, lengths, backend, gpu_name, gpu_total_gb,
                           loads_4bit=lambda chosen: chosen if load_in_4bit is None else load_in_4bit)
        config = resolve(config, device="cuda", params=shape.params, fits=share if gpu_total_gb else None).config
    model, lora, train = config.model, config.lora, config.train
    four_bit = bool(four_bit_setting(model)) if load_in_4bit is None else load_in_4bit
    width = 4 if model.dtype == "float32" else 2
    notes = []

    if four_bit:
        other_width = 4 if backend != "unsloth" else 2  # peft's k-bit preparation casts them to fp32
        weights = shape.linear_params * NF4_BYTES_PER_PARAM + shape.other_params * other_width
    else:
        weights = shape.params * width
    unknown = [t for t in lora.target_modules if t not in shape.projections()]
    if unknown:
        notes.append(f"Target modules {', '.join(unknown)} are not standard projections: not counted.")
    adapter = lora_params(shape, lora.r, lora.target_modules)
    optimizer = OPTIMIZER_BYTES.get(train.optim, 8)
    adapter_width = 2 if (four_bit and backend != "unsloth") else 4  # weights and gradients, each

    tokens = micro_batch_tokens(train.per_device_train_batch_size, model.max_seq_length, lengths,
                                packing=train.packing)
    per_token = activation_bytes_per_token(shape, lora, backend, four_bit)
    logits = ANSWER_LOGITS_BYTES * train.per_device_train_batch_size * shape.vocab_size
    if backend != "unsloth":
        notes.append("transformers + peft backend: calibrated on fewer runs than Unsloth, so the margin is wider; "
                     "with Unsloth (pip install -r requirements-gpu.txt) the same run needs less.")
    if lora.loftq_config and four_bit:
        notes.append("LoftQ adds a one-time spike while the adapter is initialised, not included here.")

    parts = {
        "base weights" + (" (4-bit)" if four_bit else f" ({8 * width}-bit)"): weights / GIB,
        "buffers": BUFFERS_GIB,
        f"LoRA adapter: {adapter / 1e6:.1f}M params + grads + {train.optim} state":
            adapter * (2 * adapter_width + optimizer) / GIB,
        f"activations: {tokens:,} tokens per micro-batch": tokens * per_token / GIB,
        f"the answer's logits: {train.per_device_train_batch_size} rows × {shape.vocab_size:,} tokens":
            logits / GIB,
        "step workspace": STEP_FIXED_GIB,
    }
    if lengths and min(min(lengths), model.max_seq_length) < min(max(lengths), model.max_seq_length):
        parts["rows of different lengths (a new padded width at each step)"] = VARIED_WIDTHS_GIB
    margin = MARGIN if backend == "unsloth" else TRANSFORMERS_MARGIN
    return Estimate(parts=parts, peak_reserved_gb=sum(parts.values()) * margin, tokens_per_micro_batch=tokens,
                    backend=backend, shape=shape, gpu_name=gpu_name, gpu_total_gb=gpu_total_gb, notes=notes,
                    config=config, four_bit=four_bit)


def activation_bytes_per_token(shape: ModelShape, lora: LoraSpec, backend: str, four_bit: bool) -> float:
    """Activation memory per token of the micro-batch: the saved layer inputs and one layer's working set, more
    without checkpointing, more with transformers + peft than with Unsloth."""
    h, i, layers = shape.hidden_size, shape.intermediate_size, shape.num_hidden_layers
    per_token = SAVED_INPUT_BYTES * layers * h + LAYER_WORKING_BYTES * (h + i)
    checkpointing = effective_checkpointing(lora.use_gradient_checkpointing, "cuda")
    if backend != "unsloth":
        per_token *= TRANSFORMERS_ACTIVATION_FACTOR[4 if four_bit else 16]
        checkpointing = "unsloth" if checkpointing != "false" else "false"  # the factor covers plain checkpointing
    if checkpointing == "true":
        per_token += PLAIN_CHECKPOINT_BYTES * layers * h
    elif checkpointing == "false":
        per_token += layers * (NO_CHECKPOINT_HIDDEN_BYTES * h + NO_CHECKPOINT_INTERMEDIATE_BYTES * i)
    if not all(m in lora.target_modules for m in MLP):
        per_token += MLP_WITHOUT_LORA_BYTES * i
    return per_token


@functools.lru_cache(maxsize=1)
def detect_gpu() -> tuple[str, float] | None:
    """(name, total GiB) of GPU 0, or None without CUDA."""
    try:
        import torch  # (torch: not at the page's start)
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return props.name, round(props.total_memory / GIB, 2)


def assumed_backend(requested: str) -> str:
    """The backend a GPU run of this config would use: Unsloth unless the config or this CUDA machine says not."""
    if requested in ("unsloth", "transformers"):
        return requested
    return "unsloth" if has_module("unsloth") or detect_gpu() is None else "transformers"


_shapes: dict[str, tuple[float, object]] = {}
FAILURE_TTL_S = 60.0


def cached_shape(name: str) -> tuple[ModelShape, bool]:
    """read_shape, remembered: the UI recomputes the estimate at every change of a setting. Failures (offline hub)
    are remembered for a minute, so a form does not wait on the network at each keystroke."""

    now = time.monotonic()
    hit = _shapes.get(name)
    if hit is None or (isinstance(hit[1], StudioError) and now - hit[0] > FAILURE_TTL_S):
        try:
            hit = (now, read_shape(name))
        except StudioError as err:
            hit = (now, err)
        _shapes[name] = hit
    if isinstance(hit[1], StudioError):
        raise hit[1]
    return hit[1]


def estimate_for_config(config: RunConfig, *, gpu_total_gb: float | None = None, gpu_name: str | None = None,
                        lengths: list[int] | None = None, shape: ModelShape | None = None,
                        backend: str | None = None) -> Estimate:
    """Read the model's shape (config only) and estimate; the GPU defaults to the one this machine has."""
    pre_quantized = False
    if shape is None:
        shape, pre_quantized = cached_shape(config.model.name.strip())
    if gpu_total_gb is None:
        found = detect_gpu()
        if found:
            gpu_name, gpu_total_gb = found
    estimate = estimate_vram(config, shape, lengths=lengths, backend=backend or assumed_backend(config.model.backend),
                             load_in_4bit=True if pre_quantized else None, gpu_total_gb=gpu_total_gb,
                             gpu_name=gpu_name)
    estimate.pre_quantized = pre_quantized
    if pre_quantized and four_bit_setting(config.model) is False:
        estimate.notes.append("This checkpoint is saved in 4-bit, so it loads in 4-bit whatever load_in_4bit says.")
    return estimate


def reestimate(estimate: Estimate, config: RunConfig, lengths: list[int] | None = None) -> Estimate:
    """The same model, backend and GPU as ``estimate``, for changed settings (a lever, a preset)."""
    return estimate_vram(config, estimate.shape, lengths=lengths, backend=estimate.backend,
                         load_in_4bit=True if estimate.pre_quantized else None,
                         gpu_total_gb=estimate.gpu_total_gb, gpu_name=estimate.gpu_name)


@dataclass
class Lever:
    label: str  # e.g. "batch 8 → 4"
    overrides: dict
    estimate: Estimate
    why: str = ""


def levers(config: RunConfig, estimate: Estimate, lengths: list[int] | None = None) -> list[Lever]:
    """The guide's memory levers, in its order, each applied alone to ``config`` and re-estimated."""
    model, lora, train = config.model, config.lora, config.train
    candidates: list[tuple[str, dict, str]] = []
    if train.per_device_train_batch_size > 1:
        b = train.per_device_train_batch_size
        nb = max(1, b // 2)
        accum = train.gradient_accumulation_steps * b // nb
        candidates.append((f"batch {b} → {nb} (grad accum {train.gradient_accumulation_steps} → {accum} keeps "
                           f"{b * train.gradient_accumulation_steps} rows per step)",
                           {"train": {"per_device_train_batch_size": nb, "gradient_accumulation_steps": accum}}, ""))
    longest = max(lengths) if lengths else None
    if longest and longest < model.max_seq_length:
        target = max(32, 1 << (longest - 1).bit_length())
        if target < model.max_seq_length:
            candidates.append((f"max_seq_length {model.max_seq_length} → {target}",
                               {"model": {"max_seq_length": target}},
                               f"your longest row is {longest} tokens: nothing is cut"))
    if model.max_seq_length >= 64 and not (longest and longest < model.max_seq_length):
        half = model.max_seq_length // 2
        candidates.append((f"max_seq_length {model.max_seq_length} → {half}", {"model": {"max_seq_length": half}},
                           "longer rows get truncated"))
    if effective_checkpointing(lora.use_gradient_checkpointing, "cuda") != "unsloth":
        candidates.append((f"gradient checkpointing '{lora.use_gradient_checkpointing}' → 'unsloth'",
                           {"lora": {"use_gradient_checkpointing": "unsloth"}}, ""))
    if not estimate.four_bit:
        candidates.append(("load_in_4bit on", {"model": {"load_in_4bit": "true"}}, ""))
    if OPTIMIZER_BYTES.get(train.optim, 8) > 2:
        candidates.append((f"optim {train.optim} → adamw_8bit", {"train": {"optim": "adamw_8bit"}}, ""))
    if any(m in lora.target_modules for m in MLP):
        candidates.append(("attention-only target modules", {"lora": {"target_modules": list(ATTENTION_ONLY)}}, ""))
    out = []
    for label, overrides, why in candidates:
        new = reestimate(estimate, config.replace(overrides), lengths)
        if "attention-only" in label and new.peak_reserved_gb >= estimate.peak_reserved_gb:
            why = ("saves adapter memory, but without LoRA on the MLP Unsloth keeps the MLP's activations: "
                   "no saving here")
        out.append(Lever(label, overrides, new, why))
    return out


def fitting_plan(config: RunConfig, estimate: Estimate, lengths: list[int] | None = None,
                 limit: float = BANDS[1][0]) -> tuple[list[Lever], Estimate] | None:
    """Levers applied one after another, in the guide's order, until the run is under ``limit`` of the GPU (those
    that help only); None when there is no GPU to compare with or even all of them are not enough."""
    if not estimate.gpu_total_gb:
        return None
    chosen, current, cfg = [], estimate, copy.deepcopy(config)
    while current.share > limit:
        options = [lv for lv in levers(cfg, current, lengths)
                   if lv.estimate.peak_reserved_gb < current.peak_reserved_gb - 1e-6]
        if not options:
            return None
        lever = options[0]
        chosen.append(lever)
        cfg = cfg.replace(lever.overrides)
        current = lever.estimate
    return chosen, current


def estimate_report(config: RunConfig, estimate: Estimate, lengths: list[int] | None = None) -> dict:
    """Everything the UI and the CLI show: the estimate, each lever, and a plan when it does not fit."""
    report = {"estimate": estimate.to_dict(), "summary": estimate.summary(), "levers": [], "plan": None}
    config = estimate.config or config  # the levers start from the settings estimated (auto ones decided)
    if estimate.gpu_total_gb and estimate.share > BANDS[1][0]:
        report["levers"] = [{"label": lv.label, "gb": round(lv.estimate.peak_reserved_gb, 2),
                             "needed_gb": round(lv.estimate.needed_gb, 2), "verdict": lv.estimate.verdict,
                             "why": lv.why} for lv in levers(config, estimate, lengths)]
        plan = fitting_plan(config, estimate, lengths)
        if plan:
            steps, final = plan
            report["plan"] = {"steps": [lv.label for lv in steps], "overrides": [lv.overrides for lv in steps],
                              "gb": round(final.peak_reserved_gb, 2), "verdict": final.verdict}
    return report



def parameters(n: float) -> str:
    """A parameter count in words: 1.54B, 135M, 0.2M."""
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M" if n >= 1e7 else f"{n / 1e6:.1f}M"


def estimate_lines(report: dict, lengths: list[int] | None = None, advice: list | None = None) -> list[str]:
    """The estimate in words, written once: the CLI prints the lines, the UI joins them as Markdown (lines starting
    with "- " or "1. " are list items)."""
    e = report["estimate"]
    shape = e["shape"]
    gpu = f"{e['gpu_name'] or 'GPU'} {e['gpu_total_gb']:.1f} GiB" if e["gpu_total_gb"] else None
    lines = [f"Model: {parameters(shape['params'])} parameters ({shape['source']}), backend {e['backend']}.",
             f"Rows: {len(lengths):,} training rows, the longest {max(lengths)} tokens (from the data check)."
             if lengths else "Rows: assumed to be max_seq_length tokens each (check the data to use the rows' real "
                             "lengths).",
             "GPU memory PyTorch reserves at the peak, estimated part by part:"]
    lines += [f"- {name}: {gb:.3f} GiB" for name, gb in e["parts_gb"].items()]
    lines.append(f"- total, with a 3% margin: {e['peak_reserved_gb']:.3f} GiB")
    lines.append(f"+ {e['context_gb']:.2f} GiB CUDA context (outside PyTorch's count) = {e['needed_gb']:.2f} GiB"
                 + (f" of {gpu} ({100 * e['share']:.0f}%): {e['verdict']}." if gpu else
                    ": no GPU here, so pick the card you will train on (--gpu-gb, or the GPU picker)."))
    if report["levers"]:
        lines.append("It will not fit comfortably. The guide's levers, in order, each alone:")
        for i, lv in enumerate(report["levers"], 1):
            why = f" ({lv['why']})" if lv["why"] else ""
            lines.append(f"{i}. {lv['label']}: {e['peak_reserved_gb']:.2f} → {lv['gb']:.2f} GiB, {lv['verdict']}{why}")
        plan = report["plan"]
        lines.append(f"To fit: {' + '.join(plan['steps'])} → {plan['gb']:.2f} GiB ({plan['verdict']})." if plan else
                     "Even all the levers together are not enough: pick a smaller model or a larger GPU.")
    for a in advice or []:
        lines.append(f"Advice: preset '{a.preset}': {a.reason}")
    lines.extend(f"Note: {n}" for n in e["notes"])
    return lines
