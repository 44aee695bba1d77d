"""Multi-process training through Accelerate on the CPU (gloo): the code path of a multi-GPU run (DDP), the CLI
under `accelerate launch` and the UI's launcher. The 2-GPU run itself needs the GPU machine's nvidia-h200-x2."""

import json
import subprocess
import sys
import time

import pytest
from conftest import LAUNCH, REPO, SAMPLE

from studio.config import RunConfig
from studio.errors import StudioError
from studio.runs.folder import CHECKPOINT_DONE, RunDir



def config_for(model_dir, **train) -> RunConfig:
    return RunConfig().replace({
        "model": {"name": str(model_dir), "max_seq_length": 256}, "data": {"path": str(SAMPLE)},
        "lora": {"use_gradient_checkpointing": "false", "r": 8},
        "train": {"max_steps": 6, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
                  "save_steps": 3, "warmup_steps": 1, **train}})


def run_cli(prefix, config_path, runs, name):
    out = subprocess.run([*prefix, "-m", "studio", "train", "--config", str(config_path), "--runs-dir", str(runs),
                          "--name", name, "--json", "--quiet"], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_the_cli_runs_unchanged_under_accelerate_launch(tiny_model_dir, tmp_path):
    config_for(tiny_model_dir).save(tmp_path / "run.json")
    runs = tmp_path / "runs"
    two = run_cli(LAUNCH, tmp_path / "run.json", runs, "two")
    run_cli([sys.executable], tmp_path / "run.json", runs, "one")  # the same config on one process

    summary = json.loads(two.stdout)  # one JSON object: rank 1 prints nothing
    assert summary["state"] == "finished" and summary["step"] == 6
    assert sorted(p.name for p in runs.iterdir()) == ["one", "two"]  # rank 1 made no folder of its own
    run = RunDir(runs / "two")
    facts = run.record()
    assert facts["distributed"] == {"processes": 2, "rows_per_step": 16,
                                    "formula": "batch 4 × grad accum 2 × 2 processes"}
    assert RunDir(runs / "one").record()["distributed"]["rows_per_step"] == 8
    steps = [r["step"] for r in run.metrics() if r.get("kind") == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]  # each step logged once, by rank 0
    tokens_two = [r["tokens_seen"] for r in run.metrics() if r.get("kind") == "train"][-1]
    tokens_one = [r["tokens_seen"] for r in RunDir(runs / "one").metrics() if r.get("kind") == "train"][-1]
    assert 1.6 < tokens_two / tokens_one < 2.4  # every step covered both processes' rows
    assert (run.adapter / "adapter_model.safetensors").exists()
    assert (run.last_checkpoint() / CHECKPOINT_DONE).exists() and run.status()["state"] == "finished"
    assert "rows per step (batch × grad accum × 2 GPUs)" in run.log_path.read_text()


def test_the_ui_launcher_trains_in_two_processes_and_stops_them_together(tiny_model_dir, tmp_path):
    from studio.runs.jobs import current as current_job
    from studio.door.launcher import start_launched
    from studio.train.worker import start_training
    from studio.ui.tabs.train import progress_html

    job = start_launched(config_for(tiny_model_dir, max_steps=100_000, save_steps=10_000), tmp_path, 2)
    assert current_job() is job
    end = time.time() + 300
    while len(job.stream.records("train")) < 3 and time.time() < end and not job.done:
        time.sleep(0.5)
    snap = job.snapshot()
    assert snap["state"] == "running", job.log_tail(80)
    assert snap["gpus"] == 2 and snap["rows_per_step"] == 16 and snap["step"] >= 3
    assert "running" in progress_html(snap) and "2 GPUs (accelerate launch)" in progress_html(snap)
    with pytest.raises(StudioError, match="already in progress"):
        start_training(config_for(tiny_model_dir), tmp_path)
    job.stop()
    assert job.wait(180) and job.proc.returncode == 0, job.log_tail(80)  # both ranks stopped together, cleanly
    assert job.state == "stopped" and job.snapshot()["state"] == "stopped"
    assert (job.run.adapter / "adapter_model.safetensors").exists()
    nxt = start_training(config_for(tiny_model_dir, max_steps=1), tmp_path)  # the lock is free again
    assert nxt.wait(120) and nxt.state == "finished"
