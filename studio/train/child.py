"""The training process the web app starts: ``python -m studio.train.child RUN --runs-dir DIR`` trains the run that
Start handed over in RUN (its config, and its data as Start read and checked it: ``RunDir.hand_over``), or with
``--resume`` continues RUN from its last checkpoint. Under ``accelerate launch`` every rank runs it. It ends with the
app that started it (``studio.machine.end_with_parent``: a kill -9 of the app leaves an interrupted run to resume);
Ctrl-C (the Stop button) stops after the current step and saves the adapter. What it says goes to the run's
launcher.log; the run's own files (status, metrics, log) are what the app reads."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from studio.data.table import LabeledTable
from studio.errors import StudioError
from studio.machine import end_with_parent, leave_process_group, ranks
from studio.runs.folder import RunDir
from studio.train.worker import TrainingJob, start_training


def start(run: str, runs_dir: str, resume: bool) -> TrainingJob:
    if resume:
        return start_training(runs_dir=runs_dir, resume=run)
    config, rows, facts = RunDir(Path(run)).handed_over()
    return start_training(config, runs_dir, into=run, table=LabeledTable.from_rows(rows, facts))


def follow(job: TrainingJob) -> None:
    """Wait for the run; Ctrl-C stops it after the current step (the adapter is saved), then waits for that."""
    try:
        while not job.wait(0.5):
            pass
    except KeyboardInterrupt:
        job.stop()
        while not job.wait(0.5):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.train.child", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run folder Start made (or the run to resume)")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    args = parser.parse_args(argv)
    # Ctrl-C is how Stop reaches this process; one started by an app that runs in a shell's background (`launch.py &`)
    # inherits SIGINT ignored, and Python then installs no handler: Stop would never land.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    end_with_parent()
    try:
        job = start(args.run, args.runs_dir, args.resume)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Stop before the run began: nothing trained (the app records it stopped)
        return 130
    follow(job)
    if ranks().distributed:
        leave_process_group()  # a rank of a multi-GPU run leaves its process group cleanly
    end = job.snapshot()
    if ranks().main:
        print(f"Run {end['run']}: {end['state']} at step {end['step']} of {end['total_steps']}.", file=sys.stderr)
    if end["state"] == "failed":
        print(f"error: {end['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
