"""Faults during a run: stop (twice, before the first step), kill -9 and resume, OOM releasing memory, errors while
loading the model, formatting the data or exporting, and a full disk (a real, small tmpfs) while saving a checkpoint
or an export. Nothing may be lost, and nothing half-written may look complete."""

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, raise_at, toy_config, wait_for

from studio.runs.folder import CHECKPOINT_DONE, RunDir, list_runs
from studio.train.worker import start_training

HERE = Path(__file__).resolve().parent


def test_stop_before_the_first_step(tiny_model_dir, toy_csv, tmp_path):
    job = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=500), tmp_path)
    job.stop()  # at once: the model is still loading
    assert job.wait(120) and job.state == "stopped"
    assert job.run.status()["state"] == "stopped" and job.run.status()["step"] == 0
    assert not job.run.adapter.exists()  # nothing trained, nothing saved that could pass for a model
    assert "Stopped before the first step" in job.log_tail()
    assert job.stream.records("train") == []
    again = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=2), tmp_path)  # ready for the next run
    assert again.wait(120) and again.state == "finished"


def test_stop_twice_mid_run_saves_the_adapter(tiny_model_dir, toy_csv, tmp_path):
    job = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=5000), tmp_path)
    assert wait_for(lambda: len(job.stream.records("train")) >= 2)
    job.stop()
    job.stop()  # an impatient second click
    assert job.wait(120) and job.state == "stopped"
    step = job.run.status()["step"]
    assert 2 <= step < 5000 and (job.run.adapter / "adapter_model.safetensors").exists()
    assert job.snapshot()["stop_requested"]
    job.stop()  # after the end: a no-op
    nxt = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=2), tmp_path)
    assert nxt.wait(120) and nxt.state == "finished"


def test_kill_9_mid_run_then_resume(tiny_model_dir, toy_csv, tmp_path):
    config = toy_config(tiny_model_dir, toy_csv, max_steps=60, save_steps=5)
    config.save(tmp_path / "run.json")
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", "--config", str(tmp_path / "run.json"),
                             "--runs-dir", str(runs), "--name", "killed", "--quiet"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = RunDir(runs / "killed")
    try:
        assert wait_for(lambda: (c := run.last_checkpoint()) is not None and int(c.name.split("-")[1]) >= 10, 240)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    # The folder is readable, says the run was interrupted, and keeps every logged step.
    assert run.record()["config"]["train"]["max_steps"] == 60
    listed = {r["name"]: r for r in list_runs(runs)}
    assert listed["killed"]["state"] == "interrupted"
    steps = [r["step"] for r in run.metrics() if r.get("kind") == "train"]
    checkpoint = run.last_checkpoint()
    at = int(checkpoint.name.split("-")[1])
    assert steps[:at] == list(range(1, at + 1))  # metrics up to (at least) the last checkpoint
    assert (checkpoint / CHECKPOINT_DONE).exists()

    resumed = start_training(runs_dir=runs, resume="killed")
    assert resumed.wait(240) and resumed.state == "finished", resumed.error
    after = [r["step"] for r in resumed.stream.records("train")]
    assert after[0] == at + 1 and after[-1] == 60  # continues from the checkpoint, not from zero
    for section in ("model", "lora", "train"):  # the same config and seeds as the killed run
        assert resumed.config.to_dict()[section] == config.to_dict()[section]
    assert resumed.config.train.seed == config.train.seed and resumed.config.data.split_seed == config.data.split_seed
    assert run.status()["state"] == "finished" and (run.adapter / "adapter_model.safetensors").exists()


def test_oom_releases_the_model_and_the_next_run_works(tiny_model_dir, toy_csv, tmp_path):
    probe = raise_at(3, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"))
    job = start_training(toy_config(tiny_model_dir, toy_csv, save_steps=2), tmp_path, callbacks=[probe])
    assert job.wait(120) and job.state == "failed" and job.error_kind == "oom"
    assert job.levers and "1. Lower per_device_train_batch_size" in job.error
    gc.collect()
    assert probe.model_ref() is None  # the model (and its memory) is really gone, not just unreferenced by the job
    assert job.run.last_checkpoint() is not None and (job.run.path / "memory.json").exists()
    nxt = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=2), tmp_path)
    assert nxt.wait(120) and nxt.state == "finished"


@pytest.mark.parametrize("name,expected", [
    ("/nonexistent/model-folder", "neither an existing folder nor a hub id"),
    ("Qwen/No-Such-Model-0.1B", "Could not load the model from the hub id"),  # no network here: same answer
])
def test_model_loading_errors_are_clear_and_leave_a_failed_run(name, expected, toy_csv, tmp_path):
    config = toy_config("x", toy_csv).replace({"model": {"name": name}})
    job = start_training(config, tmp_path)
    assert job.wait(120) and job.state == "failed" and job.error_kind == "input"
    assert expected in job.error
    assert job.run.status()["state"] == "failed" and expected in job.run.status()["error"]
    assert not job.run.adapter.exists() and job.run.run_json.exists()


def test_a_folder_without_config_is_refused(tmp_path, toy_csv):
    (tmp_path / "weights").mkdir()
    job = start_training(toy_config(tmp_path / "weights", toy_csv), tmp_path / "runs")
    assert job.wait(60) and job.state == "failed" and "has no config.json" in job.error


def test_a_formatting_error_fails_the_run_clearly(tiny_model_dir, toy_csv, tmp_path):
    config = toy_config(tiny_model_dir, toy_csv).replace({"data": {"rubric": "word " * 400},
                                                         "model": {"max_seq_length": 64}})
    job = start_training(config, tmp_path)
    assert job.wait(120) and job.state == "failed" and job.error_kind == "input"
    assert "Shorten the rubric or raise max_seq_length" in job.error
    assert not job.run.adapter.exists() and job.run.last_checkpoint() is None


def test_a_failing_export_leaves_nothing_half_written(tiny_model_dir, toy_csv, tmp_path, monkeypatch):
    from studio.export import exporter

    job = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=2), tmp_path)
    assert job.wait(120) and job.state == "finished"
    good = exporter.export_run(job.run.path, "adapters", runs_dir=tmp_path, verify=False, log=lambda m: None)
    before = {p.name: p.read_bytes() for p in good.path.iterdir() if p.is_file()}

    def broken(*args, **kwargs):
        raise RuntimeError("the model card writer broke")

    monkeypatch.setattr(exporter, "_write_metadata", broken)
    with pytest.raises(RuntimeError, match="model card writer broke"):
        exporter.export_run(job.run.path, "adapters", runs_dir=tmp_path, verify=False, log=lambda m: None)
    exports = job.run.path / "exports"
    assert sorted(p.name for p in exports.iterdir()) == ["adapters"]  # no temporary folder left behind
    assert {p.name: p.read_bytes() for p in good.path.iterdir() if p.is_file()} == before  # the old one intact
    assert json.loads((good.path / "export.json").read_text())["format"] == "adapters"


def _mount_commands(mount: Path, size_mb: int) -> list[list[str]]:
    """Ways to get a private, small tmpfs at ``mount``: a user+mount namespace (no root needed, nothing leaks
    into the host's mount table), else a plain mount as root."""
    script = f"mount -t tmpfs -o size={size_mb}m tmpfs {mount} && exec \"$0\" \"$@\""
    return [["unshare", "-rm", "sh", "-c", script], ["unshare", "-m", "sh", "-c", script]]


def run_in_small_tmpfs(tmp_path: Path, args: list[str], size_mb: int = 48) -> dict:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    out = tmp_path / "result.json"
    errors = []
    for prefix in _mount_commands(mount, size_mb):
        if shutil.which(prefix[0]) is None:
            continue
        proc = subprocess.run([*prefix, sys.executable, str(HERE / "disk_full_check.py"), "--mount", str(mount),
                               "--out", str(out), *args], cwd=REPO, capture_output=True, text=True, timeout=600)
        if out.exists():
            return json.loads(out.read_text())
        errors.append(proc.stderr[-2000:])
    pytest.fail("could not run in a small tmpfs (unshare + mount):\n" + "\n---\n".join(errors))


def test_disk_full_while_saving_a_checkpoint(tiny_model_dir, toy_csv, tmp_path):
    result = run_in_small_tmpfs(tmp_path, ["--case", "checkpoint", "--model", str(tiny_model_dir),
                                           "--data", str(toy_csv)])
    assert result["filesystem"] == "tmpfs"
    assert result["state"] == "failed" and result["error_kind"] == "disk", result
    assert "is full" in result["error"] and "checkpoint-4, is intact" in result["error"]
    assert "checkpoint-4" in result["checkpoints"] and "checkpoint-6" not in result["checkpoints"]  # partial: removed
    assert result["checkpoint_loads"]  # the previous checkpoint's adapter weights load
    assert result["resumed_state"] == "finished" and result["resumed_first_step"] == 5


def test_disk_full_while_exporting(tiny_model_dir, toy_csv, tmp_path):
    result = run_in_small_tmpfs(tmp_path, ["--case", "export", "--model", str(tiny_model_dir),
                                           "--data", str(toy_csv)])
    assert result["filesystem"] == "tmpfs"
    assert "is full" in result["error"] and "previous export there is untouched" in result["error"]
    assert result["previous_export_intact"] and result["leftovers"] == []
