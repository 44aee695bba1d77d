"""Export round trips on a tiny model with SmolLM2's architecture and tokenizer (llama.cpp's converter must
recognise the tokenizer, as it does the embedded default's): adapters, merged 16-bit, GGUF f16/q8_0/q4_k_m."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import toy_rows

from studio.config import RunConfig
from studio.errors import StudioError
from studio.evaluate.saved_run import evaluate_run
from studio.export import exporter, gguf
from studio.export.exporter import export_run
from studio.models.trained import load_run_model

REPO = __import__("conftest").REPO


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from transformers import AutoTokenizer

    from studio.models.embedded import embedded_model_dir
    from studio.models.tiny import build_tiny_model
    from studio.train.worker import start_training

    folder = tmp_path_factory.mktemp("export")
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    model_dir = build_tiny_model(folder / "tiny-llama", tokenizer=tokenizer, vocab_size=len(tokenizer),
                                 hidden_size=256, intermediate_size=512, architecture="llama")
    rows = toy_rows(160, minority_every=4, seed=2)
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(folder / "toy.csv", index=False)
    config = RunConfig().replace({
        "name": "export test: v1/../x",
        "model": {"name": str(model_dir), "max_seq_length": 256},
        "data": {"path": str(folder / "toy.csv"), "rubric": "Answer RQ or O.", "val_fraction": 0.2},
        "lora": {"use_gradient_checkpointing": "false", "r": 8, "lora_alpha": 16},
        "train": {"max_steps": 40, "learning_rate": 5e-3, "warmup_steps": 2, "per_device_train_batch_size": 8,
                  "gradient_accumulation_steps": 1}})
    job = start_training(config, folder / "runs")
    assert job.wait(300) and job.state == "finished", job.error
    loaded = load_run_model(job.run)
    evaluate_run(job.run.path, loaded=loaded)
    return job.run, loaded


def test_adapters_round_trip(run):
    run_dir, loaded = run
    result = export_run(run_dir.path, "adapters", loaded=loaded)
    assert result.agreement == 1.0 and result.verified_rows >= 16 and result.passed
    assert result.path == run_dir.path / "exports" / "adapters"
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "labels.json", "rubric.txt",
                 "run.json", "README.md", "export.json"):
        assert (result.path / name).exists(), name
    labels = json.loads((result.path / "labels.json").read_text())
    assert labels["code_to_label"] == {"O": "Other", "RQ": "Rules Question"}
    assert (result.path / "rubric.txt").read_text().strip() == "Answer RQ or O."
    card = (result.path / "README.md").read_text()
    assert "| Val A (natural ratio) |" in card and "| `RQ` | Rules Question |" in card
    assert "AutoPeftModelForCausalLM" in result.commands
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(json.loads((result.path / "studio.json").read_text())["base_source"])
    PeftModel.from_pretrained(base, result.path)  # loadable as the issue asks


def test_merged_16bit_round_trip(run):
    run_dir, loaded = run
    result = export_run(run_dir.path, "merged_16bit", loaded=loaded)
    assert result.agreement >= 0.98
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(result.path)
    assert not any("lora" in n for n, _ in model.named_parameters())
    assert str(model.dtype) == "torch.float16"


@pytest.mark.parametrize("fmt,target", [("gguf_f16", 0.98), ("gguf_q8_0", 0.98), ("gguf_q4_k_m", None)])
def test_gguf_round_trips(run, fmt, target):
    run_dir, loaded = run
    run_dir.set_threshold(0.4)
    try:
        result = export_run(run_dir.path, fmt, loaded=loaded)
    finally:
        run_dir.set_threshold(None)
    ggufs = [f for f in result.files if f.endswith(".gguf")]
    assert len(ggufs) == 1 and ggufs[0].startswith("export-test-v1-x-")  # sanitized name
    assert result.verified_rows >= 16 and result.agreement is not None
    if target:
        assert result.agreement >= target
    assert json.loads((result.path / "labels.json").read_text())["threshold"] == 0.4
    modelfile = (result.path / "Modelfile").read_text()
    assert f"FROM ./{ggufs[0]}" in modelfile and 'SYSTEM """Answer RQ or O."""' in modelfile
    assert "PARAMETER temperature 0" in modelfile and "<|im_start|>assistant" in modelfile
    assert "ollama create" in result.commands
    import llama_cpp

    with gguf.plain_cpu_buffers():  # llama.cpp's AMX path crashes on this project's CPUs (gguf.py says why)
        llm = llama_cpp.Llama(model_path=str(result.path / ggufs[0]), n_ctx=256, verbose=False)
    answer = llm.create_chat_completion([{"role": "system", "content": "Answer RQ or O."},
                                         {"role": "user", "content": "rules glue paint drill lathe 4"}],
                                        temperature=0, max_tokens=4)["choices"][0]["message"]["content"]
    llm.close()
    assert answer.strip() in ("RQ", "O")


def test_failed_export_leaves_nothing_behind(run, monkeypatch):
    run_dir, loaded = run
    target = run_dir.path / "exports" / "gguf_f16-broken"

    def broken(*args, **kwargs):
        raise StudioError("converter exploded")

    monkeypatch.setattr(gguf, "convert", broken)
    with pytest.raises(StudioError, match="converter exploded"):
        export_run(run_dir.path, "gguf_f16", target, loaded=loaded)
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".gguf_f16-broken")]


def test_export_refusals(run, tmp_path):
    run_dir, loaded = run
    with pytest.raises(StudioError, match="merged_4bit needs an NVIDIA GPU"):
        export_run(run_dir.path, "merged_4bit", loaded=loaded)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(StudioError, match="already exists and is not empty"):
        export_run(run_dir.path, "adapters", occupied, loaded=loaded)
    with pytest.raises(StudioError, match="Unknown export format"):
        export_run(run_dir.path, "onnx", loaded=loaded)


def test_refuses_while_the_run_is_training(run, monkeypatch):
    run_dir, loaded = run

    class Busy:
        done = False
        run = run_dir

    monkeypatch.setattr("studio.runs.jobs._current", Busy())
    with pytest.raises(StudioError, match="still training"):
        export_run(run_dir.path, "adapters", loaded=loaded)


def test_export_cli(run, tmp_path):
    run_dir, _ = run
    out = tmp_path / "cli-export"
    result = subprocess.run([sys.executable, "-m", "studio", "export", str(run_dir.path), "--format", "adapters",
                             "-o", str(out), "--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert data["passed"] and data["agreement"] == 1.0 and (out / "adapter_model.safetensors").exists()
    zipped = exporter.zip_export(out)
    assert zipped.exists() and zipped.stat().st_size > 1000
