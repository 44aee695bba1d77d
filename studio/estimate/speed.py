"""This machine's measured training speed, remembered per model and settings, so the next run's time can be said
before it starts."""

from __future__ import annotations

import json
import platform
import time

from studio.config import total_steps
from studio.estimate.recipe import Resolved
from studio.files import write_json_atomic
from studio.machine import cache_dir


def speed_key(model_name: str, backend: dict) -> str:
    """What a row's training time depends on besides its length: the model, the device and the compute settings."""
    device = backend.get("device")
    where = platform.processor() or platform.machine() if device == "cpu" else backend.get("gpu", "cuda")
    return "|".join(str(x) for x in (model_name, device, where, backend.get("autocast"), backend.get("dtype"),
                                     backend.get("gradient_checkpointing"), backend.get("shared_prefix_tokens", 0) > 0))


def _speed_file():
    return cache_dir() / "speed.json"


def write_speed(key: str, row_seconds: float, row_tokens: float | None = None) -> None:
    """``row_tokens``: the compute a training row of that run cost, in tokens (``studio.data.order.cost_per_row``),
    so that another file's rows, longer or shorter, are timed at their own length."""
    path = _speed_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known[key] = {"row_seconds": round(row_seconds, 4), "measured": time.time(),
                  **({"row_tokens": round(row_tokens, 2)} if row_tokens else {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, known, indent=1)


def known_speed(model_name: str) -> dict | None:
    """The most recent measured speed on this machine for a model (any settings): {"row_seconds", "measured",
    "key"}; None when the model never trained here."""
    try:
        known = json.loads(_speed_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    mine = [{"key": k, **v} for k, v in known.items() if k.split("|", 1)[0] == model_name]
    return max(mine, key=lambda v: v["measured"]) if mine else None


def time_estimate(resolved: Resolved, model_name: str, train_rows: int, row_tokens: float | None = None) -> str:
    """How long the training will take, in words, from this machine's last measured speed for the model, at this
    file's ``row_tokens`` (the compute a training row costs, in tokens) where the speed knows its own: a row's time
    grows with its length, and a file of long rows trained at half the speed of the file measured before."""
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
    row_seconds, source = speed["row_seconds"], "measured on this machine with this model"
    if row_tokens and speed.get("row_tokens"):
        row_seconds *= row_tokens / speed["row_tokens"]
        source += f", for rows of this file's length ({row_tokens:.0f} tokens each, padding included)"
    seconds = steps * per_step * row_seconds
    rate = f"at {1 / row_seconds:.1f} rows/s ({source})"
    if budget_s and seconds > budget_s:
        reached = int(budget_s / (per_step * row_seconds))
        return (f"{plan}; the time budget stops it after {budget_s / 60:g} minutes, near step {reached}, {rate}. "
                "Its learning-rate schedule is planned for the steps it will reach.")
    return f"{plan}. About {_duration(seconds)} of training {rate}."


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "a second"
    if seconds < 90:
        return f"{seconds:.0f} second{'s' if round(seconds) != 1 else ''}"
    return f"{seconds / 60:.1f} minutes"
