"""Timing training steps on the rows the trainer will draw, so a time budget plans its steps (and the learning-rate
schedule ends when the time does), and remembering the speed for the next run's estimate."""

from __future__ import annotations

import contextlib
import time

from studio.config import RunConfig
from studio.estimate.speed import speed_key, write_speed

STEP_OVERHEAD = 1.05  # the trainer's own work around each step (data, optimizer, clipping, logging); measured over a
# whole run against the timed steps (docs/benchmarks.md, "Time budget")


def measure_step_seconds(trainer, autocast: str | None) -> float:
    """Seconds of an average training micro-step, times the trainer's overhead. The micro-batches are the ones the
    trainer will draw (its sampler's order); two of them are timed, at the 25th and the 75th percentile of their
    padded widths (each twice, the first a warm-up; the widest runs once before them), and a step's cost taken as
    a + b × width from them, at the mean width: the compute grows with the tokens, but the per-step costs do not."""
    import torch  # (loaded by the run already)

    model, data = trainer.model, trainer.train_dataset
    lengths = [len(ids) for ids in data["input_ids"]]
    size = trainer.args.per_device_train_batch_size
    order = trainer.training_order()
    batches = sorted((order[s:s + size] for s in range(0, len(order), size)),
                     key=lambda b: max(lengths[i] for i in b))
    device = next(model.parameters()).device
    compute = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    model.train()

    def inputs(chosen):
        collated = trainer.data_collator([data[i] for i in chosen])
        return {k: v.to(device) if hasattr(v, "to") else v for k, v in collated.items()}

    # The widest micro-batch first, untimed: memory peaks here and the narrower steps reuse it (studio.data.order;
    # timed steps first left the process 0.9 GiB higher: docs/benchmarks.md, "CPU: training memory over a run").
    _timed_micro_step(trainer, model, inputs(batches[-1]), compute, device, repeats=1)
    points = []
    for quantile in (0.25, 0.75):
        chosen = batches[min(len(batches) - 1, int(quantile * len(batches)))]
        points.append((max(lengths[i] for i in chosen), _timed_micro_step(trainer, model, inputs(chosen), compute,
                                                                          device)))
    model.zero_grad(set_to_none=True)
    (short, short_s), (long, long_s) = points
    slope = max(0.0, (long_s - short_s) / (long - short)) if long > short else 0.0
    mean = sum(max(lengths[i] for i in b) for b in batches) / len(batches)
    return max(0.0, short_s + slope * (mean - short)) * STEP_OVERHEAD


def _timed_micro_step(trainer, model, inputs, compute, device, repeats: int = 2) -> float:
    """Seconds of one forward + backward, the last of ``repeats`` (the first warms up)."""
    import torch  # (loaded by the run already)

    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        with compute:
            loss = trainer.compute_loss(model, inputs)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds[-1]


def record_speed(config: RunConfig, backend: dict, row_seconds: float, row_tokens: float | None = None) -> None:
    """Remember this machine's measured speed for this model and these settings, at rows of ``row_tokens``
    (studio.estimate.speed)."""
    try:
        write_speed(speed_key(config.model.name, backend), row_seconds, row_tokens)
    except OSError:
        pass
