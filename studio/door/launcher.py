"""Runs the web app trains in child processes, started and watched beside the door's training verb.

On a CPU the web app trains in one child process, ``python -m studio.train.child`` (the engine's training process,
with its own interpreter lock and heap; a crash takes the run, not the app: ``studio.door.training.
in_child_processes``). With "GPUs to use" above 1, the same run is trained by ``accelerate launch --multi_gpu
--num_processes N -m studio.train.child`` (DDP through Accelerate). One GPU trains in the app's own worker thread
(``studio.train.worker``), where the stack is already imported and the model stays in memory for evaluation.

Start reads and checks the data file once, here: a file that cannot be used is refused before any process starts,
and the run folder the app creates receives the config and the checked rows (``RunDir.hand_over``), which the
child trains on without reading the file again. The child (rank 0) writes metrics.jsonl, status.json and train.log
into that folder, and ``LaunchedJob`` reads them back, so the Train tab's charts, progress and log work unchanged;
Stop sends Ctrl-C to the processes, which stop at the same step and save the adapter; a child whose app has gone
ends too (``studio.machine.end_with_parent``), as a run in the app's thread does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from studio.config import RunConfig, rows_per_step
from studio.errors import StudioError
from studio.estimate.plan import preflight
from studio.machine import parent_env
from studio.runs import jobs
from studio.runs.folder import RunDir, default_run_name, effective_state
from studio.runs.stream import FileStream

REPO = Path(__file__).resolve().parents[2]
CHILD = "studio.train.child"  # the training process's module (``python -m``)


def visible_gpus() -> int:
    try:
        import torch  # (torch: not at the page's start)

        return torch.cuda.device_count()
    except ImportError:
        return 0


def launch_command(run: Path, runs_dir: str | Path, processes: int, resume: bool) -> list[str]:
    """``python -m studio.train.child RUN``: itself for one process, through ``accelerate launch`` on ``processes``
    GPUs."""
    child = ["-m", CHILD, str(run), "--runs-dir", str(runs_dir), *(["--resume"] if resume else [])]
    if processes == 1:
        return [sys.executable, *child]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *child]


class LaunchedJob(jobs.SnapshotMixin):
    """A ``jobs.Job`` for a run trained by child processes: its live state comes from the run folder that the child
    (rank 0) writes."""

    model = tokenizer = prepared = None  # nothing in memory: evaluation and export load the saved adapter
    earlier: list = []  # a launched run starts from its beginning

    def __init__(self, config: RunConfig, run: RunDir, processes: int, warnings: list[str], proc: subprocess.Popen):
        self.config, self.run, self.processes, self.warnings, self.proc = config, run, processes, warnings, proc
        self.stream = FileStream(run.metrics_path)
        self.started, self.finished = time.time(), None
        self.stop_requested = False
        self.watcher: threading.Thread | None = None  # waits for the processes, records their end, frees the slot
        self.ended = threading.Event()  # set by the watcher once the slot is free

    @property
    def done(self) -> bool:
        """Once the processes have exited and (where a watcher runs) the slot is free: a page that sees a run end
        can start the next at once."""
        return self.ended.is_set() if self.watcher is not None else self.proc.poll() is not None

    @property
    def state(self) -> str:
        """The run's state as the child wrote it, "running" until the child has gone (so the state and ``done``
        change together, as for a run in this process's thread)."""
        state = self.run.status().get("state") or "starting"
        if not self.done:
            return "running" if state in jobs.ENDED else state  # its end is written; the process is closing
        if state in ("running", "starting"):  # the processes are gone without writing their end:
            return "stopped" if self.stop_requested else "failed"  # Stop before they trained, or the log says why
        return state

    def wait(self, timeout: float | None = None) -> bool:
        """True once the processes have exited and the watcher has recorded their end and freed the training slot
        (so a run started right after this returns finds it free)."""
        began = time.monotonic()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        if self.watcher is not None:
            self.watcher.join(None if timeout is None else max(0.0, timeout - (time.monotonic() - began)))
            if self.watcher.is_alive():
                return False
        self.finished = self.finished or time.time()
        return True

    def stop(self) -> None:
        """Ctrl-C to every rank (not to the launcher, which would tear the ranks down before they save): each rank
        asks its worker to stop, and the ranks agree on the step to stop at."""
        if self.done or self.proc.poll() is not None:  # ended, or closing
            return

        self.stop_requested = True
        ranks = training_processes(self.proc.pid)
        for rank in ranks:
            try:
                rank.send_signal(signal.SIGINT)
            except psutil.Error:
                continue
        if not ranks:  # not started yet: stop the whole group
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:  # gone in between
                pass

    def log_tail(self, lines: int = 40) -> str:
        text = self.run.log_tail(lines)
        launcher_log = self.run.path / "launcher.log"
        if self.done and self.proc.returncode and launcher_log.exists():
            text += "\n" + "\n".join(launcher_log.read_text(errors="replace").splitlines()[-lines:])
        return text

    def live(self) -> jobs.LiveState:
        """What the child wrote: its phase and plan (status.json), what each phase learnt (run.json), the steps
        re-planned as the speed changes (the last training record)."""
        record = self.run.record() if self.run.has_record() else {}
        status = self.run.status()
        state = self.state
        error = status.get("error")
        if state == "failed" and not error:
            error = (f"The training processes exited (code {self.proc.returncode}) without a status; the end of "
                     "the log says why.")
        phase = status.get("phase") or "starting"
        if state == "running" and phase in jobs.ENDED:
            phase = "saving"  # its end is written; the process is closing
        resolved = record.get("resolved") or {}
        backend = record.get("backend", {})
        if self.processes > 1:
            backend = {**backend, "device": f"{self.processes} GPUs (accelerate launch)"}
        planned = status.get("max_steps") if self.done else (self.stream.last("train") or {}).get("max_steps") \
            or status.get("max_steps")
        batch = (resolved.get("per_device_train_batch_size"), resolved.get("gradient_accumulation_steps"))
        return jobs.LiveState(
            state=state, phase=phase if state == "running" else state,
            started=self.started, finished=self.finished, total_steps=planned, backend=backend,
            warnings=list(dict.fromkeys(self.warnings + (record.get("warnings") or []))), error=error,
            error_kind=status.get("error_kind"), levers=status.get("levers") or [],
            stop_requested=self.stop_requested, gpus=self.processes,
            rows_per_step=(record.get("distributed") or {}).get("rows_per_step")
            or rows_per_step(self.config.train, self.processes),
            memory_estimate=record.get("memory_estimate"), best_eval=status.get("best_eval"),
            adapter_step=status.get("adapter_step") if state in ("finished", "stopped") else None,
            time_budget_s=60 * budget if (budget := resolved.get("time_budget_minutes")) else None,
            batch=batch if all(batch) and "distributed" in record else None)  # once the trainer is built


def training_processes(pid: int) -> list[psutil.Process]:
    """The processes that train, under ``pid`` (the launcher, or the child itself): each runs ``python -m
    studio.train.child``, and its parent does not (a process forked by a rank, a data-loading worker, has the rank's
    command line; a signal meant for the rank must not go to it instead)."""
    def trains(process) -> bool:
        try:
            argv = process.cmdline() if process is not None else []
            return "-m" in argv and argv[argv.index("-m") + 1:argv.index("-m") + 2] == [CHILD]  # python [-u] -m
        except psutil.Error:
            return False

    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    return [p for p in tree if trains(p) and not (p.pid != pid and trains(_parent(p)))]


def _parent(process):
    try:
        return process.parent()
    except psutil.Error:
        return None


def start_launched(config: RunConfig | None, runs_dir: str | Path, processes: int,
                   resume: str | Path | None = None) -> LaunchedJob:
    """Train ``config`` (or resume the run at ``resume``) in child processes: one on a CPU, ``processes`` on as many
    GPUs; returns at once (like start_training)."""
    if processes < 1:
        raise StudioError(f"A run needs at least one training process (got {processes}).")
    with jobs.claimed():
        if resume is None:
            checked = preflight(config)  # the data read and checked, once: bad data fails before any process starts
            run = RunDir.create(runs_dir, config.name or default_run_name(config.model.name, config.data.path))
            run.hand_over(config.replace({"name": run.name}), checked.table.frame, checked.table.facts())
            warnings = checked.warnings
        else:
            run = RunDir.open(resume, runs_dir)
            if run.last_checkpoint() is None:
                raise StudioError(f"Run '{run.name}' has no checkpoint to resume from; start a new run instead.")
            config, warnings = run.config(), []
        command = launch_command(run.path, runs_dir, processes, resume is not None)
        job = LaunchedJob(config, run, processes, warnings, _spawn(run, command, resume is not None))
        jobs.set_current(job)
        job.watcher = threading.Thread(target=_watch, args=(job,), name=f"studio-launch-{run.name}", daemon=True)
        job.watcher.start()
        return job


def _spawn(run: RunDir, command: list[str], resumed: bool) -> subprocess.Popen:
    """The child (``python -m studio.train.child``, or ``accelerate launch`` of it), its output in the run's
    launcher.log, in a process group of its own."""
    log = open(run.path / "launcher.log", "a" if resumed else "w", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",  # our `studio`
           **parent_env()}  # the training ends with this process
    try:
        return subprocess.Popen(command, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)
    finally:
        log.close()  # the child holds its own copy


def _watch(job: LaunchedJob) -> None:
    """Wait for the child; a child that died without writing its end leaves a failed status (or stopped, when Stop
    reached it before it trained); the slot is freed whatever happens here."""
    job.proc.wait()
    try:
        job.run.clear_hand_over()
        job.finished = time.time()
        status = job.run.status()
        if effective_state(status) in ("interrupted", "running", "unknown"):
            if job.stop_requested:  # Stop reached the processes before their worker ran: nothing was trained
                job.run.set_status("stopped", step=status.get("step", 0), finished=time.time())
            else:
                job.run.set_status("failed", error=f"The training processes exited with code "
                                                    f"{job.proc.returncode}; see launcher.log in the run folder.",
                                   finished=time.time())
    finally:
        jobs.release()
        job.ended.set()
