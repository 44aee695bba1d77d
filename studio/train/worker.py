"""The background training worker: one run at a time per process.

``start_training`` checks the config and the data in the caller's thread (so bad input is an immediate, clear
error), creates the run folder and starts a thread that runs the run's steps (``studio.train.finetune.FineTune``:
the backend, the data, the model with LoRA, the trainer, training, the adapter saved). The job here owns what the
steps do not: the thread, the stop flag, the log, the run's state and status.json, the failure's words and levers,
memory.json. The faces only read ``job.snapshot()`` and call ``job.stop()``, through the door; the worker never
touches either of them.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Callable

from studio.config import RunConfig, rows_per_step
from studio.data.prepare import file_sha256
from studio.data.table import LabeledTable
from studio.errors import StudioError, is_disk_full
from studio.estimate.plan import Preflight, preflight
from studio.machine import device_description, join_process_group, library_versions, ranks
from studio.models.trained import let_go_beside
from studio.runs import jobs
from studio.runs.folder import RunDir, default_run_name
from studio.runs.stream import MetricsStream
from studio.train.distributed import broadcast
from studio.train.finetune import Ended, FineTune
from studio.train.memory import OOM_LEVERS, drop_frames, free_memory, is_out_of_memory, measured_peak, memory_record


class _LogCapture(logging.Handler):
    """Library warnings (transformers, trl, peft, unsloth) go to the run's log too."""

    def __init__(self, job: "TrainingJob"):
        super().__init__(level=logging.WARNING)
        self.job = job

    def emit(self, record):
        self.job.log(f"[{record.name}] {record.getMessage()}")


class TrainingJob(jobs.SnapshotMixin):
    def __init__(self, config: RunConfig, run: RunDir, checked: Preflight, resume_from: Path | None,
                 callbacks: list, evaluator_factory: Callable | None):
        self.config, self.run, self.resume_from = config, run, resume_from
        self.ranks = ranks()
        self.stream = MetricsStream(run.metrics_path if self.ranks.main else None)
        self.earlier: list[dict] = []  # a resumed run's records up to its checkpoint: the charts show the whole run
        if resume_from is not None:
            done = int(resume_from.name.rsplit("-", 1)[-1])
            self.earlier = [r for r in MetricsStream.read(run.metrics_path) if r.get("step", 0) <= done]
        self.stop_event = threading.Event()
        self.state = "starting"
        self._phase = "starting"
        self.error: str | None = None
        self.error_kind: str | None = None
        self.levers: list[str] = []
        self.started = time.time()
        self.finished: float | None = None
        self._log_lines: deque[str] = deque(maxlen=400)
        self._log_lock = threading.Lock()
        self.steps = FineTune(config, run, checked, resume_from, callbacks, evaluator_factory, self.stream, self)
        self.thread = threading.Thread(target=self._run, name=f"studio-train-{run.name}", daemon=True)

    # ---- what the steps make, as the faces and the door read it ------------------------------------------------
    @property
    def model(self):
        return self.steps.model

    @model.setter
    def model(self, model) -> None:  # None: the memory goes to a new run
        self.steps.model = model

    @property
    def tokenizer(self):
        return self.steps.tokenizer

    @property
    def prepared(self):
        return self.steps.prepared

    @property
    def backend(self) -> dict:
        return self.steps.backend

    @property
    def warnings(self) -> list[str]:
        return self.steps.warnings

    @property
    def total_steps(self) -> int | None:
        return self.steps.total_steps

    # ---- what the faces use ------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        with self._log_lock:
            self._log_lines.append(line)
            if not self.ranks.main:
                return
            try:
                with open(self.run.log_path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError:  # a full disk: the log lives on in memory and in the UI
                pass

    def log_tail(self, lines: int = 40) -> str:
        with self._log_lock:
            return "\n".join(list(self._log_lines)[-lines:])

    def stop(self) -> None:
        if not self.done:
            self.stop_event.set()
            self.log("Stop requested.")

    def wait(self, timeout: float | None = None) -> bool:
        """True once the worker thread has ended, not merely once the state says done: the thread still records
        memory and drops the trainer after that, and a CLI that exited then would kill a daemon thread inside
        torch."""
        self.thread.join(timeout)
        return self.done and not self.thread.is_alive()

    @property
    def done(self) -> bool:
        return self.state in jobs.ENDED

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, phase: str) -> None:
        """What the worker does now (loading model, measuring speed, training...), in status.json too with the
        steps planned so far: the web app reads both there when its run trains in a child process."""
        self._phase = phase
        if self.ranks.main:
            try:
                self.run.note_status(phase=phase, max_steps=self.total_steps)
            except OSError:  # a full disk: the phase lives on in memory, and the failure says why
                pass

    def live(self) -> jobs.LiveState:
        steps = self.steps
        best, trained = steps.best, steps.train_config.train
        return jobs.LiveState(
            state=self.state, phase=self.phase, started=self.started, finished=self.finished,
            total_steps=steps.total_steps, backend=steps.backend, warnings=steps.warnings, error=self.error,
            error_kind=self.error_kind, levers=self.levers, stop_requested=self.stop_event.is_set(),
            gpus=self.ranks.world_size, rows_per_step=rows_per_step(trained, self.ranks.world_size),
            memory_estimate=steps.memory_estimate, gpu_in_use_at_start_gb=steps.gpu_in_use_at_start_gb,
            best_eval=None if best is None else {k: v for k, v in best.items() if k not in ("weights", "predictions")},
            adapter_step=steps.adapter_step, time_budget_s=steps.resolved.time_budget_s if steps.resolved else None,
            batch=(trained.per_device_train_batch_size, trained.gradient_accumulation_steps))

    def checkpointed(self, step: int, max_steps: int, path: Path) -> None:
        """A complete checkpoint: status.json's step kept current for other processes (the Runs table)."""
        self.run.set_status("running", step=step, max_steps=max_steps, last_checkpoint=str(path))

    # ---- the worker thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        capture = _LogCapture(self)
        loggers = [logging.getLogger(n) for n in ("transformers", "trl", "peft", "unsloth")]
        for lg in loggers:
            lg.addHandler(capture)
        try:
            self.state = "running"
            self._end(self.steps.run_steps())
        except Exception as exc:  # every failure is kept on disk and shown; the process lives on
            self._fail(exc)
        finally:
            for lg in loggers:
                lg.removeHandler(capture)
            try:
                self._record_memory()
            except OSError as exc:  # e.g. a full disk: the run's state is already recorded
                self.log(f"Could not write memory.json: {exc}")
            if self.state == "failed":
                free_memory()  # again, now that the exception and its traceback are gone
            self.finished = time.time()
            jobs.release()

    def _end(self, ended: Ended) -> None:
        self.run.set_status(ended.state, finished=time.time(), **ended.status)
        self.log(ended.words)
        self.state = self.phase = ended.state

    def _record_memory(self) -> None:
        """memory.json: the estimate and the measured peak side by side (every run, failed ones too)."""
        if not self.ranks.main:
            return
        rss = [r.get("rss_peak_gb") or r["rss_gb"] for r in self.stream.records("train") if r.get("rss_gb")]
        measured = measured_peak(self.backend.get("device"), self.steps.gpu_in_use_at_start_gb, rss)
        self.run.write_memory(memory_record(self.steps.memory_estimate, measured, self.state))

    def _fail(self, exc: Exception) -> None:
        self.log("".join(traceback.format_exception(exc)).rstrip())
        self.error_kind, self.error, self.levers = self._describe_failure(exc)
        drop_frames(exc)  # frames hold the model, the batch and the optimizer: let that memory go
        self.model = None
        free_memory()
        checkpoint = self.run.last_checkpoint()
        self.state = self.phase = "failed"
        try:
            self.run.set_status("failed", error=self.error, error_kind=self.error_kind, levers=self.levers,
                                step=self._step(), max_steps=self.total_steps, finished=time.time(),
                                last_checkpoint=str(checkpoint) if checkpoint else None)
        except OSError as write_error:  # the disk may still be full: the UI has the error, the log tries too
            self.log(f"Could not write status.json: {write_error}")

    def _describe_failure(self, exc: Exception) -> tuple[str, str, list[str]]:
        """(kind, message for the person, levers): out of memory with the guide's levers, a full disk with what was
        kept, a user error as it is, anything else by its type."""
        if is_out_of_memory(exc):
            cfg = self.steps.train_config
            return "oom", (f"Out of GPU memory at step {self._step()} (batch {cfg.train.per_device_train_batch_size}, "
                           f"max_seq_length {cfg.model.max_seq_length}, r={cfg.lora.r}). The app is still running; "
                           "try these levers in order: " + "; ".join(f"{i + 1}. {lv}" for i, lv in
                                                                      enumerate(OOM_LEVERS)) + "."), OOM_LEVERS
        if is_disk_full(exc, self.run.path):
            removed = self.run.remove_incomplete_checkpoints() if self.ranks.main else []
            last = self.run.last_checkpoint()
            return "disk", (f"The disk holding {self.run.path.parent} is full (while {self.phase}). "
                            + (f"The partial {', '.join(removed)} was removed. " if removed else "")
                            + (f"The last complete checkpoint, {last.name}, is intact: free some space, then resume "
                               "the run (Runs tab, or python -m studio train --resume " + self.run.name + ")."
                               if last else "Free some space and start the run again.")), []
        if isinstance(exc, StudioError):
            return "input", str(exc), []
        return "error", f"{type(exc).__name__}: {exc}".strip(), []

    def _step(self) -> int:
        last = self.stream.last("train")
        return last["step"] if last else 0


# ---- starting a run -------------------------------------------------------------------------------------------
def start_training(config: RunConfig | None = None, runs_dir: str | Path = "runs", *,
                   resume: str | Path | None = None, callbacks: list | None = None,
                   evaluator_factory: Callable | None = None, into: str | Path | None = None,
                   table: LabeledTable | None = None) -> TrainingJob:
    """Start a run (or resume one from its last checkpoint) in a background thread.

    Raises StudioError at once when another run is training, the config is invalid or the data is unusable.
    ``evaluator_factory(prepared, tokenizer, config)``: the periodic evaluation (default: a Val A sample scored).
    ``into``: an empty run folder made beforehand, and ``table`` the data file as read and checked there (the web
    app's launcher, which names the folder before its child processes start: ``studio.train.child``). The data file
    is read once: here, or where ``table`` was read. Under ``accelerate launch`` every rank calls this; rank 0 makes
    the run folder and the others follow it.
    """
    with jobs.claimed():
        dist = ranks()
        if dist.distributed:
            join_process_group()
        if resume is not None:
            run, config, resume_from = _resume_target(resume, runs_dir)
        else:
            config, resume_from = copy.deepcopy(config or RunConfig()), None
        checked = preflight(config, table)  # unusable data fails here, before any model is loaded
        if resume is None:
            run = _new_run_folder(config, runs_dir, into, dist)
            config.name = run.name
            run.update_record(config, created=time.time(), versions=library_versions(),
                              device=device_description(), warnings=checked.warnings)
        run.set_status("running", step=run.status().get("step", 0), started=time.time(), error=None)
        previous = jobs.current()
        if previous is not None and previous.model is not None:
            previous.model = None  # the previous run's model (kept for evaluation in memory) makes way
            let_go_beside()  # and what was built on it (the Playground's classifier)
            free_memory()
        job = TrainingJob(config, run, checked, resume_from, list(callbacks or []), evaluator_factory)
        for warning in checked.warnings:
            job.log(f"Warning: {warning}")
        jobs.set_current(job)
        job.thread.start()
        return job


def _resume_target(resume, runs_dir) -> tuple[RunDir, RunConfig, Path]:
    """The run to resume, its config and its last complete checkpoint; refused when there is none or the data
    file changed since."""
    run = RunDir.open(resume, runs_dir)
    config = run.config()
    resume_from = run.last_checkpoint()
    if resume_from is None:
        raise StudioError(f"Run '{run.name}' has no checkpoint to resume from; start a new run instead.")
    recorded = config.data.sha256
    if recorded and Path(config.data.path).exists() and file_sha256(config.data.path) != recorded:
        raise StudioError(f"The data file {config.data.path} changed since run '{run.name}' started; "
                          "resuming would train on different rows. Start a new run.")
    return RunDir(run.path, readonly=not ranks().main), config, resume_from


def _new_run_folder(config: RunConfig, runs_dir, into, dist) -> RunDir:
    """A fresh run folder (rank 0 makes it; the other ranks of a multi-GPU run follow rank 0's)."""
    if into is not None:
        run = RunDir(Path(into))
        if dist.main and run.has_record():
            raise StudioError(f"{run.path} already holds a run; start a new one or resume it.")
    elif dist.main:
        run = RunDir.create(runs_dir, config.name or default_run_name(config.model.name, config.data.path))
    if dist.distributed:  # every rank follows rank 0's folder
        name = broadcast(run.name if dist.main else None)
        run = run if (dist.main or into is not None) else RunDir(Path(runs_dir) / name)
    return RunDir(run.path, readonly=not dist.main)
