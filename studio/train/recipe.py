"""The run's recipe made concrete: settings left on auto get their values from the device, the model's size and the
data, with the reason for each (shown before Start, logged, and saved in run.json as ``resolved``).

Auto values (measured on a 2-core CPU with the embedded 135M model; docs/benchmarks.md):
- learning rate: 1e-3 for models under 300M parameters, 5e-4 under 1.2B, 2e-4 above (the guide's LoRA default);
- micro-batch: on a CPU the one of 16/8/4/2/1 rows that costs least compute per row (a micro-step's fixed cost is
  ~100 tokens' worth, so 16 rows unless some classes' rows are much longer: every optimizer step holds every class,
  and then smaller micro-batches pad less; studio.train.batching) among those the RAM estimate puts under half the
  machine's memory, checkpointing only when even one row does not fit; on a GPU the largest of 8–64 rows that the
  "Will it fit?" estimate puts under 85% of the card, with checkpointing off when that fits;
- gradient accumulation: enough micro-batches for 16 rows per optimizer step;
- time budget: 7 minutes of training on a CPU (evaluations included, so train + eval stays under 10 minutes for a few
  thousand short rows), none on a GPU;
- periodic evaluation: about 6 times per run, for early stopping and the live validation chart.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from studio.config import RunConfig, effective_checkpointing, total_steps
from studio.errors import StudioError

AUTO_LEARNING_RATES = [(3e8, 1e-3), (1.2e9, 5e-4), (math.inf, 2e-4)]  # (parameters below, learning rate)
CPU_MICRO_BATCH = 16
CPU_MICRO_BATCHES = [16, 8, 4, 2, 1]
CPU_RAM_SHARE = 0.5  # of the machine's memory (studio/estimate/ram.py)
GPU_MICRO_BATCHES = [64, 32, 16, 8]
TARGET_ROWS_PER_STEP = 16
CPU_TIME_BUDGET_MIN = 7.0
EVALUATIONS_PER_RUN = 6
MIN_EVAL_EVERY = 10
GPU_FIT_SHARE = 0.85


@dataclass
class Resolved:
    config: RunConfig  # every auto value replaced by a number
    choices: list[str] = field(default_factory=list)  # "learning rate auto → 0.001 (a 135M-parameter model)"
    time_budget_s: float | None = None

    def to_dict(self) -> dict:
        t = self.config.train
        return {"learning_rate": t.learning_rate, "per_device_train_batch_size": t.per_device_train_batch_size,
                "gradient_accumulation_steps": t.gradient_accumulation_steps, "eval_steps": t.eval_steps,
                "use_gradient_checkpointing": self.config.lora.use_gradient_checkpointing,
                "time_budget_minutes": None if self.time_budget_s is None else round(self.time_budget_s / 60, 2),
                "choices": self.choices}


def is_auto(config: RunConfig) -> bool:
    t = config.train
    return (t.learning_rate <= 0 or t.per_device_train_batch_size == 0 or t.gradient_accumulation_steps == 0
            or t.eval_steps < 0 or t.time_budget_minutes < 0 or config.lora.use_gradient_checkpointing == "auto")


def resolve(config: RunConfig, *, device: str, params: int | None = None, train_rows: int | None = None,
            fits=None, cost=None) -> Resolved:
    """A copy of ``config`` with every auto setting decided. ``fits(micro_batch, checkpointing) -> share``: the
    estimated share of the device's memory a choice needs (the GPU's, or the machine's RAM on a CPU).
    ``cost(micro_batch, step_rows) -> tokens``: the compute a training row costs in micro-batches of that size (its
    padding and its share of the micro-step; studio.train.batching.cost_per_row), from the rows' lengths and classes."""
    config = copy.deepcopy(config)
    t, lora = config.train, config.lora
    out = Resolved(config)
    if t.learning_rate <= 0:
        n = params or 0
        t.learning_rate = next(lr for limit, lr in AUTO_LEARNING_RATES if n < limit)
        out.choices.append(f"learning rate auto → {t.learning_rate:g}" + (
            f" (a {n / 1e6:,.0f}M-parameter model)" if n else " (model size unknown)"))
    if t.per_device_train_batch_size == 0 or lora.use_gradient_checkpointing == "auto":
        _micro_batch(config, device, fits, out, cost)
    if t.gradient_accumulation_steps == 0:
        t.gradient_accumulation_steps = auto_accumulation(t.per_device_train_batch_size)
        out.choices.append(f"gradient accumulation auto → {t.gradient_accumulation_steps} "
                           f"({t.per_device_train_batch_size * t.gradient_accumulation_steps} rows per step)")
    if t.time_budget_minutes < 0:
        t.time_budget_minutes = CPU_TIME_BUDGET_MIN if device == "cpu" else 0.0
        out.choices.append("time budget auto → " + (f"{t.time_budget_minutes:g} minutes (a CPU: the run stops on "
                                                    "time, its schedule planned for it)" if device == "cpu" else
                                                    "none (a GPU)"))
    out.time_budget_s = 60 * t.time_budget_minutes if t.time_budget_minutes > 0 else None
    if t.eval_steps < 0 and out.time_budget_s is None:  # with a budget: once the steps are known (eval_every)
        steps = total_steps(t, train_rows) if train_rows else (t.max_steps if t.max_steps > 0 else 0)
        t.eval_steps = eval_every(steps)
        out.choices.append(f"evaluation auto → every {t.eval_steps} steps" if t.eval_steps else
                           "evaluation auto → off (steps unknown)")
    return out


def eval_every(steps: int) -> int:
    """About EVALUATIONS_PER_RUN periodic evaluations over ``steps`` (0: none for an unknown length)."""
    return max(MIN_EVAL_EVERY, steps // EVALUATIONS_PER_RUN) if steps else 0


def budget_steps(budget_s: float, step_s: float, eval_rows: int, score_s: float, planned: int) -> tuple[int, int]:
    """(steps, eval_every) that fit a time budget: training steps of ``step_s`` plus their periodic evaluations of
    ``eval_rows`` rows at ``score_s`` seconds a row (both measured at the start of the run), at most the planned
    steps."""
    steps = planned
    for _ in range(3):  # the evaluations' share depends on the steps, and the other way round
        every = eval_every(steps)
        evaluations = steps // every + 1 if every else 0
        eval_s = evaluations * eval_rows * score_s
        steps = max(1, min(planned, int((budget_s - eval_s) / step_s)))
    return steps, eval_every(steps)


def auto_accumulation(micro_batch: int) -> int:
    """Gradient accumulation on auto: enough micro-batches for TARGET_ROWS_PER_STEP rows per optimizer step."""
    return max(1, math.ceil(TARGET_ROWS_PER_STEP / micro_batch))


def _micro_batch(config: RunConfig, device: str, fits, out: Resolved, cost=None) -> None:
    t, lora = config.train, config.lora
    auto_batch = t.per_device_train_batch_size == 0
    if fits is None:  # nothing to measure against (the model's size or the memory is unknown)
        if auto_batch:
            t.per_device_train_batch_size = CPU_MICRO_BATCH
            out.choices.append(f"micro-batch auto → {t.per_device_train_batch_size} rows")
        if lora.use_gradient_checkpointing == "auto":
            lora.use_gradient_checkpointing = effective_checkpointing("auto", device)
            out.choices.append(f"gradient checkpointing auto → {lora.use_gradient_checkpointing}"
                               + (" (a CPU: compute is what limits speed)" if device == "cpu" else ""))
        return
    gpu = device == "cuda"
    memory, limit = ("the GPU", GPU_FIT_SHARE) if gpu else ("the RAM", CPU_RAM_SHARE)
    batches = (GPU_MICRO_BATCHES if gpu else CPU_MICRO_BATCHES) if auto_batch else [t.per_device_train_batch_size]
    checkpointed = "unsloth" if gpu else "true"
    modes = ["false", checkpointed] if lora.use_gradient_checkpointing == "auto" else \
        [lora.use_gradient_checkpointing]
    for mode in modes:  # checkpointing off first: the faster step, when the memory allows it
        fitting = [(batch, share) for batch in batches if (share := fits(batch, mode)) <= limit]
        if not fitting:
            continue
        batch, share = fitting[0]  # the largest that fits
        why = ""
        if cost is not None and not gpu and len(fitting) > 1:  # on a CPU, the one that costs least per row
            per_row = {b: cost(b, b * (t.gradient_accumulation_steps or auto_accumulation(b))) for b, _ in fitting}
            cheapest = min(per_row, key=per_row.get)
            if cheapest != batch:
                why = (f"; {cheapest} rows cost {per_row[cheapest]:.0f} tokens of compute a row against "
                       f"{per_row[batch]:.0f} at {batch} (padding: some classes' rows are longer)")
                batch, share = cheapest, dict(fitting)[cheapest]
        t.per_device_train_batch_size, lora.use_gradient_checkpointing = batch, mode
        out.choices.append(f"micro-batch {'auto → ' if auto_batch else ''}{batch} rows, checkpointing "
                           f"{mode}: {100 * share:.0f}% of {memory} by the estimate{why}")
        return
    t.per_device_train_batch_size = min(batches)
    lora.use_gradient_checkpointing = modes[-1]
    out.choices.append(f"micro-batch {t.per_device_train_batch_size}, checkpointing {modes[-1]}: nothing fits under "
                       f"{100 * limit:.0f}% of {memory} by the estimate"
                       + (" (see Will it fit?)" if gpu else "; shorten the longest rows (max_seq_length)"))


def device_guess() -> str:
    """'cuda' or 'cpu' without importing torch when it is not loaded yet (the page asks this at start-up)."""
    import os
    import shutil
    import sys

    if "torch" in sys.modules:
        return "cuda" if sys.modules["torch"].cuda.is_available() else "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "cpu"
    return "cuda" if os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") else "cpu"


# ---- this machine's measured speed ------------------------------------------------------------------------------
def speed_key(model_name: str, backend: dict) -> str:
    """What a row's training time depends on besides its length: the model, the device and the compute settings."""
    import platform

    device = backend.get("device")
    where = platform.processor() or platform.machine() if device == "cpu" else backend.get("gpu", "cuda")
    return "|".join(str(x) for x in (model_name, device, where, backend.get("autocast"), backend.get("dtype"),
                                     backend.get("gradient_checkpointing"), backend.get("shared_prefix_tokens", 0) > 0))


def _speed_file():
    from studio.models.embedded import cache_dir

    return cache_dir() / "speed.json"


def write_speed(key: str, row_seconds: float) -> None:
    import json
    import os
    import time

    path = _speed_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known[key] = {"row_seconds": round(row_seconds, 4), "measured": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def known_speed(model_name: str) -> dict | None:
    """The most recent measured speed on this machine for a model (any settings): {"row_seconds", "measured",
    "key"}; None when the model never trained here."""
    import json

    try:
        known = json.loads(_speed_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    mine = [{"key": k, **v} for k, v in known.items() if k.split("|", 1)[0] == model_name]
    return max(mine, key=lambda v: v["measured"]) if mine else None


def preview(config: RunConfig, train_rows: int | None = None, lengths: list[int] | None = None,
            classes: list[int] | None = None) -> Resolved:
    """The decisions as far as they can be made before the model loads (shown before Start by the UI and the CLI):
    the device guessed, the model's size read from its config.json (no weights), the memory share from the estimate
    (the GPU's, or the RAM on a CPU), the micro-batch's cost from the rows' lengths and classes when known."""
    from studio.estimate.model_shape import read_shape  # (estimate imports this module: a cycle at the top)

    device = device_guess()
    try:
        shape, pre_quantized = read_shape(config.model.name)
    except (StudioError, OSError):
        shape, pre_quantized = None, False
    fits = None
    if device == "cpu" and shape is not None:
        from studio.estimate.ram import ram_share

        fits = ram_share(shape, lengths, config.model.max_seq_length)
    if device == "cuda" and shape is not None:
        from studio.estimate.vram import detect_gpu, estimate_vram

        gpu = detect_gpu()
        if gpu:
            def fits(batch: int, checkpointing: str) -> float:
                trial = config.replace({"train": {"per_device_train_batch_size": batch},
                                        "lora": {"use_gradient_checkpointing": checkpointing}})
                return estimate_vram(trial, shape, lengths=lengths, load_in_4bit=pre_quantized or None,
                                     gpu_name=gpu[0], gpu_total_gb=gpu[1]).share
    return resolve(config, device=device, params=shape.params if shape else None, train_rows=train_rows, fits=fits,
                   cost=row_cost(lengths, classes, config.train.seed))


def row_cost(lengths: list[int] | None, classes: list[int] | None, seed: int):
    """``cost(micro_batch, step_rows)`` for the recipe, from the training rows' lengths and classes (None without)."""
    if not lengths or not classes or len(lengths) != len(classes):
        return None
    from studio.train.batching import cost_per_row

    return lambda micro_batch, step_rows: cost_per_row(lengths, classes, micro_batch, step_rows, seed)


def time_estimate(resolved: Resolved, model_name: str, train_rows: int) -> str:
    """How long the training will take, in words, from this machine's last measured speed for the model."""
    t = resolved.config.train
    steps = total_steps(t, train_rows)
    per_step = t.per_device_train_batch_size * t.gradient_accumulation_steps
    budget_s = resolved.time_budget_s
    plan = f"{steps} steps × {per_step} rows"
    speed = known_speed(model_name)
    if not speed:
        cap = f", for at most {budget_s / 60:g} minutes (the time budget)" if budget_s else ""
        return (f"{plan}{cap}. Training time: measured in the first seconds of the run (this model has not trained "
                "on this machine yet).")
    seconds = steps * per_step * speed["row_seconds"]
    rate = f"at {1 / speed['row_seconds']:.1f} rows/s (measured on this machine with this model)"
    if budget_s and seconds > budget_s:
        reached = int(budget_s / (per_step * speed["row_seconds"]))
        return (f"{plan}; the time budget stops it after {budget_s / 60:g} minutes, near step {reached}, {rate}. "
                "Its learning-rate schedule is planned for the steps it will reach.")
    return f"{plan}. About {_duration(seconds)} of training {rate}."


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "a second"
    if seconds < 90:
        return f"{seconds:.0f} second{'s' if round(seconds) != 1 else ''}"
    return f"{seconds / 60:.1f} minutes"
