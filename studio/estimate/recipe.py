"""The run's recipe made concrete: settings left on auto get their values from the device, the model's size and the
data, with the reason for each (shown before Start, logged, and saved in the run record as ``resolved``); and the
guide's warnings that depend on the run's length, from the resolved values.

Auto values (measured on a 2-core CPU with the embedded 135M model; docs/benchmarks.md):
- learning rate: 1e-3 for models under 300M parameters, 5e-4 under 1.2B, 2e-4 above (the guide's LoRA default);
- micro-batch: on a CPU the one of 16/8/4/2/1 rows that costs least compute per row (a micro-step's fixed cost is
  ~100 tokens' worth, so 16 rows unless some classes' rows are much longer: every optimizer step holds every class,
  and then smaller micro-batches pad less; studio.data.order) among those the RAM estimate puts under half the
  machine's memory, checkpointing only when even one row does not fit; on a GPU the largest of 8–64 rows that the
  "Will it fit?" estimate puts under 85% of the card, with checkpointing off when that fits;
- gradient accumulation: enough micro-batches for 16 rows per optimizer step;
- time budget: 7 minutes of training on a CPU (evaluations included, so train + eval stays under 10 minutes for a few
  thousand short rows), none on a GPU;
- periodic evaluation: about 6 times per run, for early stopping and the live validation chart;
- 4-bit loading: off on a CPU; on a GPU off when a 16-bit run fits under 85% of the card by the estimate (16-bit
  trained faster and better on the embedded model's real weights), on when only 4-bit fits.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from studio.config import RunConfig, TrainSpec, effective_checkpointing, four_bit, rows_per_step, total_steps

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
MIN_GPU_STEPS = 60  # a GPU's largest micro-batch gave a 424-row set 12 steps in 2 epochs (macro-F1 0.55 against
# 0.96 on the CPU's 58 steps of 16 rows; docs/benchmarks.md, "Real weights on a GPU")


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
                "load_in_4bit": self.config.model.load_in_4bit,
                "time_budget_minutes": None if self.time_budget_s is None else round(self.time_budget_s / 60, 2),
                "choices": self.choices}


def resolve(config: RunConfig, *, device: str, params: int | None = None, train_rows: int | None = None,
            fits=None, cost=None) -> Resolved:
    """A copy of ``config`` with every auto setting decided. ``fits(micro_batch, checkpointing, four_bit) -> share``:
    the estimated share of the device's memory a choice needs (the GPU's, or the machine's RAM on a CPU).
    ``cost(micro_batch, step_rows) -> tokens``: the compute a training row costs in micro-batches of that size (its
    padding and its share of the micro-step; studio.data.order.cost_per_row), from the rows' lengths and classes."""
    config = copy.deepcopy(config)
    t, lora = config.train, config.lora
    out = Resolved(config)
    if t.learning_rate <= 0:
        n = params or 0
        t.learning_rate = next(lr for limit, lr in AUTO_LEARNING_RATES if n < limit)
        out.choices.append(f"learning rate auto → {t.learning_rate:g}" + (
            f" (a {n / 1e6:,.0f}M-parameter model)" if n else " (model size unknown)"))
    if four_bit(config.model) is None:
        _four_bit(config, device, fits, out)
    if t.per_device_train_batch_size == 0 or lora.use_gradient_checkpointing == "auto":
        _micro_batch(config, device, fits, out, cost, train_rows)
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


def _four_bit(config: RunConfig, device: str, fits, out: Resolved) -> None:
    """load_in_4bit on auto: 16-bit when a 16-bit run fits the card's comfortable share at the smallest micro-batch
    the run may take (checkpointed, when checkpointing is left to decide), 4-bit when only 4-bit fits."""
    model, t, lora = config.model, config.train, config.lora
    if device != "cuda":
        model.load_in_4bit = "false"  # 4-bit needs CUDA: nothing to decide, nothing to say
        return
    if fits is None:  # the model's size or the card is unknown: the guide's memory-safe default
        model.load_in_4bit = "true"
        out.choices.append("4-bit auto → on (the model's size or the GPU is unknown: the memory-safe choice)")
        return
    batch = t.per_device_train_batch_size or min(GPU_MICRO_BATCHES)
    mode = "unsloth" if lora.use_gradient_checkpointing == "auto" else lora.use_gradient_checkpointing
    sixteen, four = fits(batch, mode, False), fits(batch, mode, True)
    model.load_in_4bit = "false" if sixteen <= GPU_FIT_SHARE else "true"
    out.choices.append(f"4-bit auto → off: a 16-bit run fits ({100 * sixteen:.0f}% of the GPU by the estimate; "
                       "16-bit trains faster and scored higher)" if sixteen <= GPU_FIT_SHARE else
                       f"4-bit auto → on: a 16-bit run needs {100 * sixteen:.0f}% of the GPU by the estimate, "
                       f"4-bit {100 * four:.0f}%")


def _enough_steps(t: TrainSpec, batches: list[int], train_rows: int | None) -> list[int]:
    """On a GPU, the micro-batches that leave a run of the planned epochs at least MIN_GPU_STEPS optimizer steps
    (the smallest when none does); all of them when the rows or the epochs are not what decides the length."""
    if not train_rows or t.max_steps > 0:
        return batches
    passes = train_rows * t.num_train_epochs
    enough = [b for b in batches if passes / (b * (t.gradient_accumulation_steps or auto_accumulation(b)))
              >= MIN_GPU_STEPS]
    return enough or [min(batches)]


def _micro_batch(config: RunConfig, device: str, fits, out: Resolved, cost=None, train_rows: int | None = None) -> None:
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
    capped = ""
    if gpu and auto_batch:
        batches = _enough_steps(t, batches, train_rows)
        if batches[0] != GPU_MICRO_BATCHES[0]:
            capped = (f"; at most {batches[0]} rows so that {train_rows} rows give the run at least "
                      f"{MIN_GPU_STEPS} steps where they can")
    checkpointed = "unsloth" if gpu else "true"
    bits = bool(four_bit(config.model))
    modes = ["false", checkpointed] if lora.use_gradient_checkpointing == "auto" else \
        [lora.use_gradient_checkpointing]
    for mode in modes:  # checkpointing off first: the faster step, when the memory allows it
        fitting = [(batch, share) for batch in batches if (share := fits(batch, mode, bits)) <= limit]
        if not fitting:
            continue
        batch, share = fitting[0]  # the largest that fits
        why = capped
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


def step_warnings(train: TrainSpec, train_rows: int, gpus: int = 1) -> list[str]:
    """The guide's warnings about the run's length, from the resolved trainer settings (the steps the run will take,
    not the ones auto settings stand for): warm-up outside 1–5% of the steps, many passes over the rows."""
    steps = total_steps(train, train_rows, gpus)
    per_step = rows_per_step(train, gpus)
    low, high = max(1, round(0.01 * steps)), max(1, round(0.05 * steps))
    budgeted = train.time_budget_minutes != 0 and train.max_steps <= 0  # the steps are planned at the start
    warnings = []
    if steps >= 100 and not budgeted and not low <= train.warmup_steps <= high:
        warnings.append(f"warmup_steps={train.warmup_steps} is {100 * train.warmup_steps / steps:.1f}% of "
                        f"{steps} steps; the guide suggests 1–5% ({low}–{high} steps).")
    elif steps < 100 and train.warmup_steps > max(5, steps // 4):
        warnings.append(f"warmup_steps={train.warmup_steps} is a large share of a {steps}-step run; "
                        "a handful of steps is enough for short runs.")
    epochs = steps * per_step / max(1, train_rows)
    if epochs > 5:
        warnings.append(f"{steps} steps × {per_step} rows is {epochs:.1f} passes over {train_rows} training "
                        "rows: watch for overfitting (Val A/B scores falling while the loss keeps dropping).")
    return warnings
