"""Runs inside a private, small tmpfs that test_faults.py mounts (unshare + mount): the runs folder lives on it, and
the disk is filled at a chosen moment, so the next write fails with a real "No space left on device".

  --case checkpoint: train with a checkpoint every 2 steps; fill the disk right after checkpoint-4; checkpoint-6
                     cannot be written. Then free the space and resume.
  --case export:     train, export adapters, fill the disk, export again over it.

Writes what happened as JSON to --out (outside the tmpfs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def fill(mount: Path) -> None:
    """Take every free byte of the filesystem."""
    chunk = b"\0" * (1 << 20)
    with open(mount / "filler", "wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    fh.write(chunk[:size])
            except OSError:
                continue


def filesystem_of(path: Path) -> str:
    best = ("", "")
    for line in Path("/proc/mounts").read_text().splitlines():
        _, point, kind, *_ = line.split()
        if str(path).startswith(point) and len(point) > len(best[0]):
            best = (point, kind)
    return best[1]


def config(model: str, data: str, **train):
    from studio.config import RunConfig

    return RunConfig().replace({
        "model": {"name": model, "max_seq_length": 256}, "data": {"path": data, "rubric": "Answer RQ or O."},
        "lora": {"use_gradient_checkpointing": "false", "r": 8},
        "train": {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "warmup_steps": 1, **train}})


def checkpoint_case(mount: Path, model: str, data: str) -> dict:
    from safetensors import safe_open
    from transformers import TrainerCallback

    from studio.train.worker import start_training

    class FillAfterCheckpoint4(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 4:
                fill(mount)

    runs = mount / "runs"
    job = start_training(config(model, data, max_steps=10, save_steps=2), runs, callbacks=[FillAfterCheckpoint4()])
    job.wait(300)
    run = job.run
    result = {"state": job.state, "error_kind": job.error_kind, "error": job.error,
              "checkpoints": sorted(p.name for p in run.checkpoints.iterdir())}
    last = run.last_checkpoint()
    with safe_open(str(last / "adapter_model.safetensors"), "pt") as fh:
        result["checkpoint_loads"] = len(list(fh.keys())) > 0
    os.remove(mount / "filler")  # the user frees space, then resumes
    resumed = start_training(runs_dir=runs, resume=run.name)
    resumed.wait(300)
    steps = [r["step"] for r in resumed.stream.records("train")]
    result.update(resumed_state=resumed.state, resumed_error=resumed.error,
                  resumed_first_step=steps[0] if steps else None)
    return result


def export_case(mount: Path, model: str, data: str) -> dict:
    from studio.errors import StudioError
    from studio.export.exporter import export_run
    from studio.train.worker import start_training

    runs = mount / "runs"
    job = start_training(config(model, data, max_steps=2), runs)
    job.wait(300)
    first = export_run(job.run.path, "adapters", runs_dir=runs, verify=False, log=lambda m: None)
    before = {p.name: p.read_bytes() for p in first.path.iterdir() if p.is_file()}
    fill(mount)
    result = {"error": None}
    try:
        export_run(job.run.path, "adapters", runs_dir=runs, verify=False, log=lambda m: None)
    except StudioError as err:
        result["error"] = str(err)
    exports = job.run.path / "exports"
    result["previous_export_intact"] = {p.name: p.read_bytes() for p in first.path.iterdir() if p.is_file()} == before
    result["leftovers"] = sorted(p.name for p in exports.iterdir() if p.name != "adapters")
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mount", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--case", choices=["checkpoint", "export"], required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    mount = Path(args.mount)
    case = checkpoint_case if args.case == "checkpoint" else export_case
    result = {"filesystem": filesystem_of(mount), **case(mount, args.model, args.data)}
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
