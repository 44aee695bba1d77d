"""Who is training: one job per process, owned here.

A job is either a run trained in this process by the worker thread (``studio.train.worker.TrainingJob``: the CLI,
the web app on one GPU) or one trained by child processes (``studio.door.launcher.LaunchedJob``: the web app on a CPU,
``accelerate launch`` on several GPUs). Both satisfy ``Job`` and build their snapshot with the one
``build_snapshot`` below, from the run folder, the metrics stream and what only the job knows while it runs
(``LiveState``). The faces read ``current()`` and its snapshot, and call ``stop()``, through the door.

Light on purpose (no torch): the page imports it.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from studio.errors import StudioError
from studio.runs.folder import RunDir
from studio.runs.stream import MetricsStream

ENDED = ("finished", "stopped", "failed")  # a run's states once its training is over
_slot = threading.Lock()
_current: "Job | None" = None


@dataclass
class LiveState:
    """The parts of a snapshot that are not in the run folder or the stream."""

    state: str
    phase: str
    started: float
    finished: float | None = None
    total_steps: int | None = None
    backend: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    levers: list[str] = field(default_factory=list)
    stop_requested: bool = False
    gpus: int = 1
    rows_per_step: int = 0
    memory_estimate: dict | None = None
    gpu_in_use_at_start_gb: float = 0.0  # GPU memory the process held before the run (models kept for evaluation)
    best_eval: dict | None = None  # the best periodic evaluation so far: {"step", "macro_f1", ...}
    adapter_step: int | None = None  # the step whose adapter was kept (once the run ended)
    time_budget_s: float | None = None
    batch: tuple[int, int] | None = None  # (micro-batch, accumulation) as trained: the resolved values


class Job(Protocol):
    run: RunDir
    stream: MetricsStream
    warnings: list[str]
    model: object  # the trained model kept for evaluation in memory (None when it lives in other processes)
    earlier: list[dict]  # records from before a resume (the stream holds what this job appended)

    @property
    def done(self) -> bool: ...

    @property
    def state(self) -> str: ...

    def live(self) -> LiveState: ...

    def snapshot(self) -> dict: ...

    def log_tail(self, lines: int = 40) -> str: ...

    def stop(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class SnapshotMixin:
    """The one ``snapshot()``: both job kinds inherit it."""

    def snapshot(self) -> dict:
        return build_snapshot(self.run, self.stream, self.live())


def build_snapshot(run: RunDir, stream: MetricsStream, live: LiveState) -> dict:
    """What the Train tab and the CLI's progress bar show: progress, loss, speed, ETA, memory, errors."""
    last = stream.last("train") or {}
    step = last.get("step", 0)
    total = live.total_steps or last.get("max_steps")
    running = live.state in ("starting", "running")
    estimate = live.memory_estimate or {}
    peak = last.get("mem_peak_reserved_gb")
    return {
        "run": run.name, "run_dir": str(run.path), "state": live.state, "phase": live.phase,
        "step": step, "total_steps": total, "progress": (step / total) if total else 0.0,
        "loss": last.get("loss"), "learning_rate": last.get("learning_rate"),
        "tokens_per_s": last.get("tokens_per_s"), "eta_s": last.get("eta_s") if running else None,
        "elapsed_s": round((live.finished or time.time()) - live.started, 1),
        "backend": live.backend, "warnings": live.warnings, "error": live.error, "error_kind": live.error_kind,
        "levers": live.levers, "stop_requested": live.stop_requested, "n_records": len(stream),
        "gpus": live.gpus, "rows_per_step": live.rows_per_step, "batch": live.batch,
        "memory": {"estimate_gb": estimate.get("peak_reserved_gb"), "verdict": estimate.get("verdict"),
                   "on_gpu": bool(estimate.get("gpu_total_gb")) or peak is not None,
                   "measured_gb": None if peak is None else round(peak - live.gpu_in_use_at_start_gb, 3),
                   "in_use_at_start_gb": live.gpu_in_use_at_start_gb, "rss_gb": last.get("rss_gb"),
                   "rss_peak_gb": last.get("rss_peak_gb"),
                   "ram_estimate_gb": (estimate.get("cpu_ram") or {}).get("peak_gb")},
        "best_eval": live.best_eval, "adapter_step": live.adapter_step, "time_budget_s": live.time_budget_s,
        "first_classifier": first_classifier(run),
    }


def first_classifier(run: RunDir) -> dict | None:
    """The run's first classifier while it is the one in use (the classic model, ready while the LLM trains): its
    cross-fitted Val A macro-F1 and when it was ready; None otherwise."""
    try:
        record = run.record()
    except StudioError:
        return None
    first = (record.get("classifier") or {}).get("first")
    if not first:
        return None
    figures = (record.get("eval_summary") or {}).get("chosen_val_a") or {}
    return {"macro_f1": figures.get("macro_f1"), "after_start_s": first.get("after_start_s")}


# ---- the one job of this process --------------------------------------------------------------------------------
def claim() -> None:
    """Take the training slot (one run trains at a time per process); raise if a run already holds it."""
    if not _slot.acquire(blocking=False):
        busy = _current.run.name if _current is not None else "another run"
        raise StudioError(f"A training run is already in progress ('{busy}'). Only one run trains at a time: "
                          "stop it or wait for it to finish.")


def release() -> None:
    _slot.release()


@contextmanager
def claimed():
    """Hold the slot while a job is being started; give it back if starting fails (the job releases it later)."""
    claim()
    try:
        yield
    except BaseException:
        release()
        raise


def set_current(job: "Job") -> None:
    global _current
    _current = job


def current() -> "Job | None":
    """The job started in this process (running or last finished): the UI reattaches to it after a reload."""
    return _current


def live_names() -> set[str]:
    """Names of runs training now in this process."""
    job = _current
    return {job.run.name} if job is not None and not job.done else set()


def refuse_while_training(run: RunDir, action: str = "use it") -> None:
    """Evaluation, export and deletion wait until a run's training has ended."""
    job = _current
    if job is not None and not job.done and job.run.path.resolve() == run.path.resolve():
        raise StudioError(f"Run '{run.name}' is still training; wait for it to finish or stop it first, then "
                          f"{action}.")
