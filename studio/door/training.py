"""Start, resume and stop training, and the status of the run that trains: for the web app one GPU trains in this
process's worker thread, the CPU in a child process and several GPUs through an ``accelerate launch`` child (the
choice is made here, ``in_child_processes``: for a new run from the GPUs asked for, for a resumed one from the
processes it was started with); the CLI trains in its own process (``train_here``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.config import RunConfig
from studio.door.plan import rows_per_step_words
from studio.door.result import Result, escape_html, md_list
from studio.errors import StudioError
from studio.machine import device_guess, import_stack_in_background, leave_process_group, ranks
from studio.runs import jobs
from studio.runs.folder import RunDir, list_runs


@dataclass
class Started(Result):
    job: object  # studio.runs.jobs.Job
    per_step: str  # "16 rows per optimizer step (batch 16 × grad accum 1 × 1 GPU)"
    resumed: bool = False

    @property
    def run(self) -> RunDir:
        return self.job.run

    def lines(self) -> list[str]:
        verb = "resumed" if self.resumed else "started"
        return [f"Run {self.run.name} {verb} in {self.run.path}: {self.per_step}."] + \
            [f"warning: {w}" for w in self.job.warnings]

    def markdown(self) -> str:
        verb = "resumed" if self.resumed else "started"
        notes = [f"Run **{self.run.name}** {verb} in `{self.run.path}`: {self.per_step}."] + \
            [f"⚠ {w}" for w in self.job.warnings]
        return md_list(notes)


def warm_up(log=print):
    """Import the training stack in the background now, where that saves the first Start's wait (a GPU machine with
    unsloth: about 26 s); the web app calls it at launch. Returns the importing thread, or None."""
    return import_stack_in_background(log)


def start(config: RunConfig, runs_dir: str | Path = "runs", gpus: int = 1) -> Started:
    """Start a run (the web app's Start); raises StudioError at once for bad settings, unusable data, or a run
    already training."""
    gpus = int(gpus or 1)
    if in_child_processes(gpus):
        from studio.door.launcher import start_launched  # (torch: only to train)

        job = start_launched(config, runs_dir, gpus)
    else:
        from studio.train.worker import start_training  # (torch: only to train)

        job = start_training(config, runs_dir)
    return Started(job, _per_step(config, gpus))


def in_child_processes(processes: int) -> bool:
    """Where the web app trains: on several GPUs in ``accelerate launch``'s processes; on a CPU in one child process,
    the command line's own run (its own interpreter lock and heap, not shared with the server's threads; a crash or
    the out-of-memory killer takes the run, not the app; docs/benchmarks.md, "The browser and the CLI"); on one GPU
    in the app's worker thread, where the stack is imported ahead (warm_up) and the model stays in memory for
    evaluation (Start to evaluated 74-81 s on an H200)."""
    return processes > 1 or device_guess() == "cpu"


def resume(run: str | Path, runs_dir: str | Path = "runs", names_only: bool = False) -> Started:
    """Resume a run from its last checkpoint, on as many processes as it was started with, where Start trains."""
    folder = RunDir.open(run, runs_dir, inside_only=names_only)
    processes = (folder.record().get("distributed") or {}).get("processes") or 1
    if in_child_processes(processes):
        from studio.door.launcher import (  # (torch: only to train)
            start_launched,
            visible_gpus,
        )

        if processes > 1 and visible_gpus() < processes:
            raise StudioError(f"Run '{folder.name}' trained on {processes} GPUs and this machine shows "
                              f"{visible_gpus()}: resume it where it started, or with accelerate launch by hand.")
        job = start_launched(None, runs_dir, processes, resume=folder.path)
    else:
        from studio.train.worker import start_training  # (torch: only to train)

        job = start_training(runs_dir=runs_dir, resume=folder.path)
    return Started(job, _per_step(job.config, processes), resumed=True)


def train_here(config: RunConfig | None = None, runs_dir: str | Path = "runs", *, resume: str | Path | None = None):
    """Train in this process, whatever the GPUs (the CLI; under ``accelerate launch`` one rank of the run).
    Returns the job."""
    from studio.train.worker import start_training  # (torch: only to train)

    return start_training(config, runs_dir, resume=resume)


def done_here(job) -> None:
    """After a run trained in this process ended: a rank of a multi-GPU run leaves its process group cleanly."""
    if ranks().distributed:
        leave_process_group()


def speaks() -> bool:
    """Whether this process speaks for its run: always, but for the ranks other than 0 of a multi-GPU run."""
    return ranks().main


def _per_step(config: RunConfig, gpus: int) -> str:
    """The rows per step as set, or, where the micro-batch is left on auto, when it is decided: a guess made without
    the rows' lengths said "batch 16 × 1" for runs that trained 8 × 2."""
    t = config.train
    if t.per_device_train_batch_size == 0 or t.gradient_accumulation_steps == 0:
        return ("the micro-batch is decided from your rows once the model has loaded (the status line shows the rows "
                "a step as trained)")
    return rows_per_step_words(t, gpus)


def stop() -> str:
    """Ask the run that trains to stop after its current step (it saves the adapter)."""
    job = jobs.current()
    if job is None or job.done:
        raise StudioError("No training run is in progress.")
    job.stop()
    return "Stopping after the current step; the adapter will be saved."


@dataclass
class Status:
    snapshot: dict
    records: list[dict]  # the whole run's metrics (a resumed run's from its first step)
    log: str
    done: bool


def status(log_lines: int = 60) -> Status | None:
    """What the Train tab shows: the snapshot, the metrics so far and the log's end; None before the first run."""
    job = jobs.current()
    if job is None:
        return None
    return Status(job.snapshot(), job.earlier + job.stream.records(), job.log_tail(log_lines), job.done)


@dataclass
class Interrupted:
    """The newest run, when it was interrupted (the app or the machine stopped while it trained)."""

    name: str
    step: int  # the last step it logged
    max_steps: int | None
    checkpoint_step: int | None  # where Resume continues from (None: no complete checkpoint)

    def html_words(self) -> str:
        where = f"step {self.step}/{self.max_steps or '?'}"
        if self.checkpoint_step is None:
            return (f"Run <b>{escape_html(self.name)}</b> was interrupted at {where} before its first checkpoint: "
                    "start it again.")
        return (f"Run <b>{escape_html(self.name)}</b> was interrupted at {where} (the app or the machine stopped). "
                f"Its last checkpoint is step {self.checkpoint_step}: Resume continues from there, with the time "
                "budget it had left.")


def interrupted(runs_dir: str | Path = "runs") -> Interrupted | None:
    """The newest run of the runs folder if it was interrupted and no run trains in this process now."""
    if jobs.current() is not None:
        return None
    newest = next(iter(list_runs(runs_dir)), None)
    if newest is None or newest["state"] != "interrupted":
        return None
    saved = [step for step, _, complete in RunDir(Path(newest["path"])).checkpoint_folders() if complete]
    return Interrupted(newest["name"], newest["step"] or 0, newest["max_steps"], saved[-1] if saved else None)


def interrupted_config(runs_dir: str | Path = "runs") -> RunConfig | None:
    """The settings of the newest run when it was interrupted (a crash, a restart) and its data file is still there:
    a page started after the restart starts from them, so its Data tab shows the data Resume trains on (not the
    sample, which Start would then have trained on). Its name is left for a new run to choose."""
    stopped = interrupted(runs_dir)
    if stopped is None:
        return None
    config = RunDir.open(stopped.name, runs_dir).config()
    config.name = ""
    return config if Path(config.data.path).exists() else None


def visible_gpus() -> int:
    from studio.door.launcher import visible_gpus as count  # (torch: asked once the page has loaded)

    return count()


@dataclass
class Finished(Result):
    snapshot: dict
    adapter: str | None

    def to_dict(self) -> dict:
        s = self.snapshot
        return {"run": s["run"], "run_dir": s["run_dir"], "state": s["state"], "step": s["step"],
                "total_steps": s["total_steps"], "loss": s["loss"], "backend": s["backend"].get("name"),
                "adapter": self.adapter, "error": s["error"]}

    def lines(self) -> list[str]:
        s = self.snapshot
        loss = s["loss"] if s["loss"] is None else round(s["loss"], 4)
        return [f"{s['state']}: run {s['run']} at step {s['step']}/{s['total_steps']}, loss {loss}; folder "
                f"{s['run_dir']}"]


def finished(job) -> Finished:
    """How a run ended (the CLI's last line)."""
    return Finished(job.snapshot(), str(job.run.adapter) if job.run.adapter.exists() else None)
