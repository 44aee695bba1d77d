"""One owner for the training job, one Job protocol for both kinds (a worker thread in this process, or child
processes watched through the run folder), one snapshot."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, toy_config, wait_for

from studio.errors import StudioError
from studio.runs import jobs
from studio.runs.folder import RunDir


def drive(job, started_state=("starting", "running")) -> dict:
    """Use a job through the Job protocol only: follow it, stop it, read its end."""
    assert wait_for(lambda: len(job.stream.records("train")) >= 2 or job.done, 300), job.log_tail(80)
    live = job.snapshot()
    assert live["state"] in started_state and live["step"] >= 1 and not job.done
    assert live["eta_s"] is not None and live["loss"] is not None
    job.stop()
    assert job.wait(300) and job.done
    end = job.snapshot()
    assert end["state"] == "stopped" and end["eta_s"] is None  # a stopped run has no time left
    assert "Stop" in job.log_tail(200)
    assert (job.run.adapter / "adapter_model.safetensors").exists()
    return end


def test_both_job_kinds_satisfy_one_protocol_and_one_snapshot(tiny_model_dir, toy_csv, tmp_path):
    from studio.train.launcher import LaunchedJob
    from studio.train.worker import start_training

    config = toy_config(tiny_model_dir, toy_csv, max_steps=100_000, save_steps=10_000)
    in_process = start_training(config, tmp_path / "runs")
    assert jobs.current() is in_process
    with pytest.raises(StudioError, match="already in progress"):
        jobs.claim()
    here = drive(in_process)

    # The other kind: a run trained by a child process (the CLI, as accelerate launch runs it), watched through
    # its folder.
    run = RunDir.create(tmp_path / "runs", "child")
    config.replace({"name": run.name}).save(tmp_path / "child.json")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Started with SIGINT ignored, as a shell starts a background job (`launch.py &`) and its children inherit: Stop
    # must still land (it once did not: the child trained on).
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", "--config", str(tmp_path / "child.json"),
                             "--runs-dir", str(tmp_path / "runs"), "--into", str(run.path), "--quiet"],
                            cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    child = LaunchedJob(config, run, 1, [], proc)
    try:
        there = drive(child)
    finally:  # a child that did not stop must not train on beside the rest of the suite
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert set(here) == set(there)  # the same snapshot, built by one function, for both kinds
    assert here["memory"].keys() == there["memory"].keys()
    assert there["gpus"] == 1 and there["rows_per_step"] == here["rows_per_step"]


def test_the_slot_is_refused_while_held_and_free_after(tmp_path):
    with jobs.claimed():  # a job starting: it keeps the slot until it ends
        with pytest.raises(StudioError, match="already in progress"):
            jobs.claim()
    jobs.release()  # what the job does when it ends
    jobs.claim()  # free again
    jobs.release()
    with pytest.raises(RuntimeError):
        with jobs.claimed():
            raise RuntimeError("starting failed")
    jobs.claim()  # a failed start gives the slot back
    jobs.release()


def test_file_stream_reads_only_complete_lines(tmp_path):
    from studio.runs.stream import FileStream, MetricsStream

    path = tmp_path / "metrics.jsonl"
    writer = MetricsStream(path)
    reader = FileStream(path)
    assert reader.records() == [] and reader.last() is None and len(reader) == 0
    writer.append({"kind": "train", "step": 1})
    writer.append({"kind": "eval", "step": 1})
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"kind": "train", "st')  # a line still being written
    assert [r["step"] for r in reader.records("train")] == [1] and len(reader) == 2
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('ep": 2}\n')
    assert reader.last("train")["step"] == 2 and len(reader) == 3
    with pytest.raises(TypeError):
        reader.append({"kind": "train"})


def test_trainer_settings_come_from_the_run_config(tiny_model_dir, toy_csv):
    from studio.train.sft import NEVER, sft_args

    config = toy_config(tiny_model_dir, toy_csv, max_steps=50, save_steps=0)
    args = sft_args(config, output_dir=Path("/x/checkpoints"), optim="adamw_torch", dtype="float32", device="cpu")
    assert args["per_device_train_batch_size"] == 8 and args["gradient_accumulation_steps"] == 1
    assert args["learning_rate"] == 5e-3 and args["max_steps"] == 50 and args["optim"] == "adamw_torch"
    assert args["save_steps"] == NEVER and args["output_dir"] == "/x/checkpoints"  # by time (the callback asks)
    assert args["use_cpu"] and not args["bf16"] and not args["fp16"] and args["max_length"] == 256
    gpu = sft_args(config.replace({"train": {"save_steps": 7}}), output_dir="o", optim="adamw_8bit",
                   dtype="bfloat16", device="cuda")
    assert gpu["bf16"] and not gpu["use_cpu"] and gpu["save_steps"] == 7
    from trl import SFTConfig

    SFTConfig(**{**args, "output_dir": str(Path("/tmp") / f"sft-args-{time.time()}")})  # TRL accepts every key
