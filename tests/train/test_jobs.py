"""One owner for the training job, one Job protocol for both kinds (a worker thread in this process, or child
processes watched through the run folder), one snapshot."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
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
    from studio.door.launcher import LaunchedJob, launch_command
    from studio.estimate.plan import preflight
    from studio.train.worker import start_training

    config = toy_config(tiny_model_dir, toy_csv, max_steps=100_000, save_steps=10_000)
    in_process = start_training(config, tmp_path / "runs")
    assert jobs.current() is in_process
    with pytest.raises(StudioError, match="already in progress"):
        jobs.claim()
    here = drive(in_process)

    # The other kind: a run trained by a child process (the training process the web app starts, as accelerate
    # launch runs it), watched through its folder.
    run = RunDir.create(tmp_path / "runs", "child")
    checked = preflight(config)
    run.hand_over(config.replace({"name": run.name}), checked.table.frame, checked.table.facts())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Started with SIGINT ignored, as a shell starts a background job (`launch.py &`) and its children inherit: Stop
    # must still land (it once did not: the child trained on).
    proc = subprocess.Popen(launch_command(run.path, tmp_path / "runs", 1, resume=False),
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


def test_the_web_app_trains_on_a_cpu_in_a_child_process_that_shows_its_phases(tiny_model_dir, toy_csv, tmp_path):
    """Start from the web app on a CPU: the command line's own run in a child process (the app's server and page
    slowed a run in its own process), watched through the folder with the phases, the plan and the batch as the
    worker thread shows them; the model is not in the app's memory, the slot is free once it ends."""
    from studio.door import training
    from studio.door.launcher import LaunchedJob

    started = training.start(toy_config(tiny_model_dir, toy_csv, max_steps=30, eval_steps=10), tmp_path / "runs")
    job = started.job
    assert isinstance(job, LaunchedJob) and job.proc.pid != os.getpid()
    assert started.per_step == "8 rows per optimizer step (batch 8 × grad accum 1)"  # no GPU in the formula
    phases = []
    while not job.wait(0.05):
        phase = job.snapshot()["phase"]
        if phase not in phases:
            phases.append(phase)
    assert {"reading the data", "training"} <= set(phases), phases
    assert phases.index("reading the data") < phases.index("training")
    end = job.snapshot()
    assert end["state"] == end["phase"] == "finished" and end["step"] == end["total_steps"] == 30
    assert end["batch"] == (8, 1) and end["rows_per_step"] == 8 and end["backend"]["device"] == "cpu"
    assert end["adapter_step"] == 30 and end["best_eval"]["step"] in (10, 20, 30)
    assert end["memory"]["rss_gb"] > 0 and end["memory"]["ram_estimate_gb"] > 0
    assert job.model is None and (job.run.adapter / "adapter_model.safetensors").exists()
    jobs.claim()  # free again
    jobs.release()


def test_a_start_reads_the_data_file_once(tiny_model_dir, toy_csv, tmp_path, monkeypatch):
    """Start reads and checks the data file once: the web app's Start in its own process, and its training process
    trains on the rows Start handed over (the file may be gone by then), the run recording the file's hash as read;
    a run started in this process (the CLI, one GPU) prepares its sets from the table its start read."""
    import shutil

    from studio.data import prepare
    from studio.door import training
    from studio.train.worker import start_training

    reads = []
    real = prepare.load_table
    monkeypatch.setattr(prepare, "load_table", lambda path, **kw: reads.append(path) or real(path, **kw))
    data = Path(shutil.copy(toy_csv, tmp_path / "posts.csv"))
    sha = prepare.file_sha256(data)
    job = training.start(toy_config(tiny_model_dir, data, max_steps=6), tmp_path / "runs").job
    assert reads == [str(data)]
    data.rename(tmp_path / "gone.csv")  # the training process never opens it
    assert job.wait(300) and job.state == "finished", job.log_tail(60)
    assert job.run.config().data.sha256 == sha and job.run.config().data.label_column == "label"
    assert not (job.run.path / ".launch").exists()  # what Start handed over goes once the process has ended
    reads.clear()
    here = start_training(toy_config(tiny_model_dir, tmp_path / "gone.csv", max_steps=4), tmp_path / "runs")
    assert here.wait(300) and here.state == "finished", here.error
    assert reads == [str(tmp_path / "gone.csv")]


def test_stop_before_the_child_process_trained_ends_the_run_stopped(tiny_model_dir, toy_csv, tmp_path):
    """Stop clicked while the child process is still starting (importing, reading the data): the run ends
    "stopped" with nothing trained, as it does in the app's own thread, and the next Start is free to go."""
    from studio.door import training

    job = training.start(toy_config(tiny_model_dir, toy_csv, max_steps=30), tmp_path / "runs").job
    assert wait_for(lambda: training_started(job), 30)
    job.stop()
    assert job.wait(120) and job.state == "stopped", job.log_tail(40)
    assert job.run.status()["state"] == "stopped" and not job.run.adapter.exists()
    jobs.claim()
    jobs.release()


def test_a_child_process_killed_mid_run_fails_the_run_and_not_the_app(tiny_model_dir, toy_csv, tmp_path):
    """The out-of-memory killer (or any crash) takes the training process: the run ends "failed" with what happened
    and where to look, its checkpoint kept; this process (the app) lives on and the next Start is free to go."""
    from studio.door import training
    from studio.door.launcher import training_processes

    job = training.start(toy_config(tiny_model_dir, toy_csv, max_steps=100_000, save_steps=5), tmp_path / "runs").job
    assert wait_for(lambda: len(job.stream.records("train")) >= 6 or job.done, 120), job.log_tail(40)
    for rank in training_processes(job.proc.pid):
        rank.kill()
    assert job.wait(60) and job.state == "failed"
    end = job.snapshot()
    assert "exited with code -9" in end["error"] and "launcher.log" in end["error"]
    assert job.run.status()["state"] == "failed" and job.run.last_checkpoint() is not None  # Resume can go on
    jobs.claim()
    jobs.release()


def test_a_child_run_reads_ended_only_once_its_process_has_gone(tmp_path):
    """The child writes "finished" and then still closes (memory.json, exit): until it has gone and the slot is
    free the run reads "running (saving)", so the page's state, its charts' last draw and the Start button change
    together (the page once drew "finished" with Start still disabled and the charts a poll behind)."""
    import threading

    from studio.config import RunConfig
    from studio.door.launcher import LaunchedJob, _watch

    run = RunDir.create(tmp_path / "runs", "closing")
    run.set_status("finished", step=3, max_steps=3, phase="finished")
    closing = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    jobs.claim()  # as start_launched holds it
    job = LaunchedJob(RunConfig(), run, 1, [], closing)
    job.watcher = threading.Thread(target=_watch, args=(job,), daemon=True)
    job.watcher.start()
    snap = job.snapshot()
    assert not job.done and (snap["state"], snap["phase"]) == ("running", "saving")
    assert job.wait(30) and job.done and job.snapshot()["state"] == "finished"
    jobs.claim()  # the slot is free once it reads finished
    jobs.release()


def training_started(job) -> bool:
    from studio.door.launcher import training_processes

    return bool(training_processes(job.proc.pid))


def test_a_training_process_ends_with_the_app_that_started_it(tmp_path):
    """A child the web app started ends within a second of the app, killed or not (the run then reads
    interrupted, as a run in the app's own thread does); a process no app started has no watch."""
    app_code = ("import os, subprocess, sys, time; from studio.machine import parent_env; "
                "code = 'from studio.machine import end_with_parent; import time; "
                "end_with_parent(0.1); time.sleep(600)'; "
                "child = subprocess.Popen([sys.executable, '-c', code], env={**os.environ, **parent_env()}); "
                "print(child.pid, flush=True); time.sleep(600)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    app = subprocess.Popen([sys.executable, "-c", app_code], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    child = int(app.stdout.readline())
    try:
        time.sleep(2.0)
        assert psutil.Process(child).status() != psutil.STATUS_ZOMBIE  # lives while the app does
        app.kill()
        app.wait()
        assert wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE,
                        10)
    finally:
        for pid in (app.pid, child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    alone = "from studio.machine import end_with_parent; assert end_with_parent() is None"
    assert subprocess.run([sys.executable, "-c", alone], cwd=REPO, env={
        k: v for k, v in env.items() if k != "STUDIO_PARENT"}).returncode == 0


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
