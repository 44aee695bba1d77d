"""Multi-GPU runs from the web UI: ``accelerate launch`` in child processes, watched through the run folder.

The UI's single-GPU path keeps the in-process worker thread. With "GPUs to use" above 1, the same run config is
trained by ``accelerate launch --multi_gpu --num_processes N -m studio train`` (DDP through Accelerate, as the
README's multi-GPU section runs it by hand). Rank 0 writes metrics.jsonl, status.json and train.log into a run folder
the UI created, and ``LaunchedJob`` reads them back, so the Train tab's charts, progress and log work unchanged;
Stop sends Ctrl-C to the processes, whose ranks then stop together at the same step and save the adapter.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from studio.config import RunConfig, rows_per_step, validate_config
from studio.data.prepare import prepare_data
from studio.errors import StudioError
from studio.train import jobs
from studio.train.runs import RunDir, default_run_name, effective_state
from studio.train.stream import FileStream

REPO = Path(__file__).resolve().parents[2]


def visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def launch_command(config_path: Path, runs_dir: Path, run_dir: Path, processes: int) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "studio", "train", "--config", str(config_path), "--runs-dir", str(runs_dir),
            "--into", str(run_dir), "--quiet"]


class LaunchedJob(jobs.SnapshotMixin):
    """A ``jobs.Job`` for a run trained by child processes: its live state comes from the run folder that rank 0
    writes."""

    model = tokenizer = prepared = None  # nothing in memory: evaluation and export load the saved adapter
    earlier: list = []  # a launched run starts from its beginning

    def __init__(self, config: RunConfig, run: RunDir, processes: int, warnings: list[str], proc: subprocess.Popen):
        self.config, self.run, self.processes, self.warnings, self.proc = config, run, processes, warnings, proc
        self.stream = FileStream(run.metrics_path)
        self.started, self.finished = time.time(), None
        self._stop_requested = False

    @property
    def done(self) -> bool:
        return self.proc.poll() is not None

    @property
    def state(self) -> str:
        state = self.run.status().get("state") or "starting"
        if self.done and state in ("running", "starting"):
            return "failed"  # the processes are gone without saying why: the log does
        return state

    def wait(self, timeout: float | None = None) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        self.finished = self.finished or time.time()
        return True

    def stop(self) -> None:
        """Ctrl-C to every rank (not to the launcher, which would tear the ranks down before they save): each rank's
        CLI asks its worker to stop, and the ranks agree on the step to stop at."""
        if self.done:
            return
        import psutil

        self._stop_requested = True
        try:
            ranks = [p for p in psutil.Process(self.proc.pid).children(recursive=True)
                     if "studio" in " ".join(p.cmdline())]
        except psutil.Error:
            ranks = []
        for rank in ranks:
            try:
                rank.send_signal(signal.SIGINT)
            except psutil.Error:
                continue
        if not ranks:  # not started yet: stop the whole group
            os.killpg(self.proc.pid, signal.SIGINT)

    def log_tail(self, lines: int = 40) -> str:
        text = self.run.log_tail(lines)
        launcher_log = self.run.path / "launcher.log"
        if self.done and self.proc.returncode and launcher_log.exists():
            text += "\n" + "\n".join(launcher_log.read_text(errors="replace").splitlines()[-lines:])
        return text

    def live(self) -> jobs.LiveState:
        facts = self.run.read_run_json() if self.run.run_json.exists() else {}
        status = self.run.status()
        state = self.state
        error = status.get("error")
        if state == "failed" and not error:
            error = (f"The training processes exited (code {self.proc.returncode}) without a status; the end of "
                     "the log says why.")
        return jobs.LiveState(
            state=state, phase="training" if state == "running" else state, started=self.started,
            finished=self.finished, total_steps=status.get("max_steps"),
            backend={**facts.get("backend", {}), "device": f"{self.processes} GPUs (accelerate launch)"},
            warnings=self.warnings, error=error, error_kind=status.get("error_kind"),
            levers=status.get("levers") or [], stop_requested=self._stop_requested, gpus=self.processes,
            rows_per_step=(facts.get("distributed") or {}).get("rows_per_step")
            or rows_per_step(self.config.train, self.processes),
            memory_estimate=facts.get("memory_estimate"), best_eval=status.get("best_eval"),
            time_budget_s=60 * budget if (budget := (facts.get("resolved") or {}).get("time_budget_minutes")) else None)


def start_launched(config: RunConfig, runs_dir: str | Path, processes: int) -> LaunchedJob:
    """Train ``config`` on ``processes`` GPUs in child processes; returns at once (like start_training)."""
    if processes < 2:
        raise StudioError("Multi-GPU training needs at least 2 processes; 1 GPU trains in the app itself.")
    with jobs.claimed():
        prepared = prepare_data(copy.deepcopy(config.data))  # bad data fails here, before any process starts
        warnings = prepared.warnings + validate_config(config, len(prepared.train), processes)
        run = RunDir.create(runs_dir, config.name or default_run_name(config.model.name, config.data.path))
        config_path = run.path.parent / f".{run.name}.launch.json"
        config.replace({"name": run.name}).save(config_path)
        log = open(run.path / "launcher.log", "w", encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}  # our `studio`
        proc = subprocess.Popen(launch_command(config_path, Path(runs_dir), run.path, processes), cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        job = LaunchedJob(config, run, processes, warnings, proc)
        jobs.set_current(job)

        def release():
            proc.wait()
            log.close()
            config_path.unlink(missing_ok=True)
            job.finished = time.time()
            if effective_state(run.status()) in ("interrupted", "running"):  # died without writing its end
                run.set_status("failed", error=f"The training processes exited with code {proc.returncode}; see "
                                                "launcher.log in the run folder.", finished=time.time())
            jobs.release()

        threading.Thread(target=release, name=f"studio-launch-{run.name}", daemon=True).start()
        return job
