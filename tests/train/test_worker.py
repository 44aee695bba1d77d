"""The training worker on the tiny Qwen2: loss falls, metrics stream live, stop, second start refused, OOM,
resume, run.json round trip."""

import json

import pytest
import torch
from conftest import raise_at, toy_config, wait_for

from studio.config import RunConfig
from studio.errors import StudioError
from studio.runs.folder import RunDir, list_runs
from studio.runs.jobs import current as current_job
from studio.train.worker import OOM_LEVERS, start_training


def test_a_run_trains_and_the_loss_falls(tiny_model_dir, toy_csv, tmp_path):
    job = start_training(toy_config(tiny_model_dir, toy_csv), tmp_path)
    assert job.wait(300) and job.state == "finished", job.error
    losses = [r["loss"] for r in job.stream.records("train")]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    record = job.stream.last()
    for key in ("step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_s", "elapsed_s", "eta_s",
                "rss_gb"):
        assert record[key] is not None, key
    assert record["tokens_per_s"] > 0 and record["step"] == 40
    run = job.run
    assert run.status()["state"] == "finished" and (run.adapter / "adapter_model.safetensors").exists()
    assert json.loads((run.adapter / "studio.json").read_text())["label_codes"] == {"Other": "O",
                                                                                   "Rules Question": "RQ"}
    facts = run.record()
    assert facts["backend"]["name"] == "transformers" and "CPU" in facts["backend"]["reason"]
    assert any("adamw_8bit" in n for n in facts["backend"]["notices"])  # the guide's optimizer fell back, noted
    assert facts["versions"]["trl"] and facts["device"]["type"] == "cpu"
    assert [json.loads(x)["step"] for x in run.metrics_path.read_text().splitlines()][-1] == 40
    # run.json round-trips into the same config
    assert RunConfig.load(run.run_json).to_dict() == job.config.to_dict()
    assert current_job() is job


def test_metrics_arrive_while_training_and_stop_leaves_a_loadable_adapter(tiny_model_dir, toy_csv, tmp_path):
    job = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=2000), tmp_path)
    assert wait_for(lambda: len(job.stream.records("train")) >= 3)
    assert job.state == "running"  # records arrived before the end
    with pytest.raises(StudioError, match="already in progress"):
        start_training(toy_config(tiny_model_dir, toy_csv), tmp_path)
    job.stop()
    assert job.wait(120) and job.state == "stopped"
    step = job.snapshot()["step"]
    assert 3 <= step < 2000
    assert job.run.status()["state"] == "stopped"

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, job.run.adapter)
    trained = dict(job.model.named_parameters())
    for name, param in model.named_parameters():
        if "lora_B" in name:
            assert torch.allclose(param, trained[name].detach().cpu())
            break
    else:
        pytest.fail("no LoRA weights in the saved adapter")


def test_injected_oom_is_handled_and_the_app_lives_on(tiny_model_dir, toy_csv, tmp_path):
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    job = start_training(toy_config(tiny_model_dir, toy_csv, save_steps=2), tmp_path, callbacks=[raise_at(5, oom)])
    assert job.wait(120)
    assert job.state == "failed" and job.error_kind == "oom"
    assert job.levers == OOM_LEVERS and job.levers[0].startswith("Lower per_device_train_batch_size")
    assert "Out of GPU memory at step" in job.error and "1. Lower per_device_train_batch_size" in job.error
    status = job.run.status()
    assert status["state"] == "failed" and status["error_kind"] == "oom" and status["levers"] == OOM_LEVERS
    assert job.run.last_checkpoint() is not None  # nothing was lost: config, log, checkpoint
    assert job.run.run_json.exists() and "OutOfMemoryError" in job.run.log_path.read_text()
    assert job.model is None  # memory released
    nxt = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=2), tmp_path)  # the lock was released
    assert nxt.wait(120) and nxt.state == "finished"


def test_resume_continues_from_the_last_checkpoint(tiny_model_dir, toy_csv, tmp_path):
    crash = RuntimeError("power cut")
    job = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=10, save_steps=5), tmp_path,
                         callbacks=[raise_at(7, crash)])
    assert job.wait(120) and job.state == "failed" and job.error_kind == "error"
    assert job.run.last_checkpoint().name == "checkpoint-5"
    resumed = start_training(runs_dir=tmp_path, resume=job.run.name)
    assert resumed.run.path == job.run.path
    assert resumed.wait(120) and resumed.state == "finished", resumed.error
    steps = [r["step"] for r in resumed.stream.records("train")]
    assert steps == [6, 7, 8, 9, 10]  # continued from step 5, not from 0
    assert resumed.run.status()["state"] == "finished" and resumed.run.status()["step"] == 10
    assert [r["step"] for r in resumed.run.metrics()][-5:] == [6, 7, 8, 9, 10]


def test_resume_refuses_without_checkpoint_or_with_changed_data(tiny_model_dir, toy_csv, tmp_path):
    data = tmp_path / "copy.csv"
    data.write_text(toy_csv.read_text())
    job = start_training(toy_config(tiny_model_dir, data, max_steps=4, save_steps=2), tmp_path / "runs")
    assert job.wait(120) and job.state == "finished"
    data.write_text(toy_csv.read_text() + "one more row,Other\n")
    with pytest.raises(StudioError, match="changed since run"):
        start_training(runs_dir=tmp_path / "runs", resume=job.run.name)
    bare = RunDir.create(tmp_path / "runs", "bare")
    bare.update_record(RunConfig())
    with pytest.raises(StudioError, match="no checkpoint to resume from"):
        start_training(runs_dir=tmp_path / "runs", resume="bare")


def test_bad_data_fails_fast_without_a_run_folder(tiny_model_dir, tmp_path):
    bad = tmp_path / "one_class.csv"
    bad.write_text("text,label\n" + "\n".join(f"post {i},Other" for i in range(10)))
    with pytest.raises(StudioError, match="Only one class"):
        start_training(toy_config(tiny_model_dir, bad), tmp_path / "runs")
    assert list_runs(tmp_path / "runs") == []


def test_model_errors_are_surfaced_with_the_run_kept(toy_csv, tmp_path):
    config = toy_config("/nonexistent/model", toy_csv)
    job = start_training(config, tmp_path)
    assert job.wait(60) and job.state == "failed" and job.error_kind == "input"
    assert "neither an existing folder nor a hub id" in job.error
    assert list_runs(tmp_path)[0]["state"] == "failed"
