"""The one config (round trips, CLI flags, validation, presets), run folders and backend choice."""

import json

import pytest

from studio.cli import build_parser, config_from_args
from studio.config import PRESETS, RunConfig, apply_preset, rows_per_step, total_steps, validate_config
from studio.errors import StudioError
from studio.estimate.plan import check_config
from studio.models.loading import choose_backend, effective_settings, resolve_source
from studio.runs.folder import RunDir, effective_state, sanitize_name


def test_config_round_trips_through_json(tmp_path):
    config = apply_preset(RunConfig(), "Memory tight + r=32 (rsLoRA)")
    config.data.label_codes = {"Rules Question": "RQ", "Other": "O"}
    config.lora.loftq_config = {"loftq_bits": 4}
    path = tmp_path / "run.json"
    config.save(path)
    assert RunConfig.load(path) == config
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"config": config.to_dict(), "backend": {"name": "x"}}))
    assert RunConfig.load(wrapped) == config  # a run folder's run.json loads too


def test_cli_flags_come_from_the_dataclasses():
    args = build_parser().parse_args([
        "train", "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--r", "32", "--use-rslora", "--max-steps", "7",
        "--target-modules", "q_proj,v_proj", "--no-load-in-4bit", "--data", "x.csv", "--learning-rate", "1e-4",
        "--label-codes", '{"Other": "O"}'])
    config = config_from_args(args)
    assert config.model.name == "Qwen/Qwen2.5-0.5B-Instruct" and config.model.load_in_4bit == "false"
    for flags, four_bit in ((["--load-in-4bit"], "true"), (["--load-in-4bit", "auto"], "auto"), ([], "auto")):
        assert config_from_args(build_parser().parse_args(["train", *flags])).model.load_in_4bit == four_bit
    assert RunConfig.from_dict({"model": {"load_in_4bit": True}}).model.load_in_4bit == "true"  # an older run.json
    assert (config.lora.r, config.lora.use_rslora, config.lora.target_modules) == (32, True, ["q_proj", "v_proj"])
    assert (config.train.max_steps, config.train.learning_rate) == (7, 1e-4)
    assert config.data.path == "x.csv" and config.data.label_codes == {"Other": "O"}
    assert config.lora.lora_alpha == RunConfig().lora.lora_alpha  # unset flags keep defaults


@pytest.mark.parametrize("data,match", [
    ({"lora": {"r": "many"}}, "'lora.r' expects int"),
    ({"train": {"optim": "lion"}}, "must be one of"),
    ({"lora": {"rank": 8}}, "unknown setting rank"),
    ({"model": {"load_in_4bit": "maybe"}}, "must be one of"),
])
def test_bad_config_values_name_the_setting(data, match):
    with pytest.raises(StudioError, match=match):
        RunConfig().replace(data)


def test_validation_errors_and_guide_warnings():
    with pytest.raises(StudioError, match="target_modules is empty"):
        validate_config(RunConfig().replace({"lora": {"target_modules": []}}))
    with pytest.raises(StudioError, match="max_steps 0"):
        validate_config(RunConfig().replace({"train": {"max_steps": 0}}))
    warnings = validate_config(RunConfig().replace({"lora": {"r": 32}}))
    assert any("rsLoRA" in w and "r ≥ 32" in w for w in warnings)
    loftq = RunConfig().replace({"lora": {"loftq_config": {"loftq_bits": 4}}, "model": {"load_in_4bit": True}})
    assert any("one-time memory spike" in w for w in validate_config(loftq))
    long_run = RunConfig().replace({"train": {"max_steps": 1000, "warmup_steps": 0}})
    assert any("1–5%" in w and "10–50 steps" in w for w in check_config(long_run, train_rows=50_000))
    assert not any("warmup" in w for w in check_config(RunConfig().replace(
        {"train": {"max_steps": 1000, "warmup_steps": 20}}), train_rows=50_000))


def test_the_plans_warnings_count_the_plans_steps(tiny_model_dir, monkeypatch):
    """The warm-up warning shown before Start counts the steps of the plan beside it (the micro-batch the rows'
    lengths allow on the card), not those of a preview made without the lengths (the GPU run that warned of 554
    steps of 16 rows and ran 140 of 64). A 1 GB card: 16 rows fit at max_seq_length, 64 at the rows' 24 tokens."""
    from studio.door.data import DataFacts
    from studio.door.plan import plan
    from studio.estimate import plan as preview_module

    monkeypatch.setattr(preview_module, "device_guess", lambda: "cuda")
    monkeypatch.setattr(preview_module, "detect_gpu", lambda: ("Test GPU", 1.0))

    config = RunConfig().replace({"model": {"name": str(tiny_model_dir)},
                                  "train": {"time_budget_minutes": 0, "warmup_steps": 1, "num_train_epochs": 3}})
    rows = 20_000
    facts = DataFacts(rows, [24] * rows, [i % 2 for i in range(rows)], {"a": rows // 2, "b": rows // 2},
                      str(tiny_model_dir), 512)
    shown = plan(config, facts)
    steps = total_steps(shown.resolved.config.train, rows)
    assert shown.resolved.config.train.per_device_train_batch_size == 64
    warning = next(w for w in shown.warnings if w.startswith("warmup_steps=1 is"))
    assert f" of {steps} steps" in warning and f"**{steps}** steps" in shown.lines()[0]


def test_provisional_codes_are_not_warned_about(tmp_path):
    """Without the model's tokenizer the letters are provisional (the run chooses codes with its tokenizer and warns
    about those): no warning names a code the run will not use; codes the user set are warned about as they are."""
    import pandas as pd

    from studio.config import DataRecipe
    from studio.data.prepare import prepare_data

    labels = ["Abbreviation", "Entity", "Human"]  # letters: 'A' (a common word), 'E', 'H'
    path = tmp_path / "six.csv"
    pd.DataFrame({"text": [f"question {i} about {labels[i % 3]}" for i in range(90)],
                  "label": [labels[i % 3] for i in range(90)]}).to_csv(path, index=False)
    provisional = prepare_data(DataRecipe(path=str(path)))
    assert provisional.codes["Abbreviation"] == "A" and not any("common English word" in w
                                                                for w in provisional.warnings)
    chosen = prepare_data(DataRecipe(path=str(path), label_codes={"Abbreviation": "A", "Entity": "E", "Human": "H"}))
    assert any("'A' is a common English word" in w for w in chosen.warnings)


def test_presets_follow_the_guide():
    tight = apply_preset(RunConfig(), "Memory tight")
    assert (tight.model.load_in_4bit, tight.lora.use_gradient_checkpointing, tight.train.optim) == \
        ("true", "unsloth", "adamw_8bit")
    r32 = apply_preset(RunConfig(), "Memory tight + r=32 (rsLoRA)")
    assert (r32.lora.r, r32.lora.use_rslora, r32.lora.lora_alpha) == (32, True, 16)
    assert 1e-4 <= r32.train.learning_rate <= 1.5e-4
    assert apply_preset(RunConfig(), "Small dataset (~2k rows)").lora.lora_dropout == 0.05
    assert apply_preset(RunConfig(), "90/10 imbalance").data.balance in ("70/30", "50/50")
    for name in PRESETS:
        validate_config(apply_preset(RunConfig(), name))  # every preset is valid


def test_steps_arithmetic():
    train = RunConfig().replace({"train": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}}).train
    assert rows_per_step(train, gpus=2) == 2 * 4 * 2
    train.max_steps = -1
    train.num_train_epochs = 2
    assert total_steps(train, 800) == 200  # 800 rows / 8 per step × 2 epochs


@pytest.mark.parametrize("name,expected", [("../../etc/passwd", "etc-passwd"), ("my run: v2", "my-run-v2"),
                                           (".hidden", "hidden"), ("a/b\\c", "a-b-c"),
                                           ("v1/../x", "v1-x")])
def test_run_names_are_sanitized(name, expected):
    assert sanitize_name(name) == expected


def test_run_folders_are_unique_and_contained(tmp_path):
    a = RunDir.create(tmp_path, "demo")
    b = RunDir.create(tmp_path, "demo")
    assert (a.name, b.name) == ("demo", "demo-2")
    escape = RunDir.create(tmp_path, "../../outside")
    assert escape.path.parent == tmp_path
    with pytest.raises(StudioError, match="has no usable characters"):
        sanitize_name("../..")
    with pytest.raises(StudioError, match="No run at"):
        RunDir.open("missing", tmp_path)


def test_a_dead_running_status_reads_interrupted():
    assert effective_state({"state": "running", "pid": 999_999_999}) == "interrupted"
    assert effective_state({"state": "finished"}) == "finished"


def test_backend_on_a_cpu_machine():
    backend = choose_backend("auto")
    assert (backend.name, backend.device) == ("transformers", "cpu") and "no CUDA" in backend.reason
    with pytest.raises(StudioError, match="needs an NVIDIA GPU"):
        choose_backend("unsloth")
    load_in_4bit, optim, dtype = effective_settings(RunConfig().model, RunConfig().train, backend)
    assert (load_in_4bit, optim, dtype) == (False, "adamw_torch", "float32")
    assert not any("4-bit" in n for n in backend.notices)  # auto: nothing to refuse on a CPU
    asked = RunConfig().replace({"model": {"load_in_4bit": "true"}, "train": {"optim": "adamw_8bit"}})
    effective_settings(asked.model, asked.train, backend)
    assert any("4-bit" in n for n in backend.notices) and any("adamw_8bit" in n for n in backend.notices)


def test_model_sources(tiny_model_dir, tmp_path):
    assert resolve_source(str(tiny_model_dir)) == str(tiny_model_dir)
    assert resolve_source("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(StudioError, match="no config.json"):
        resolve_source(str(tmp_path))
    with pytest.raises(StudioError, match="neither an existing folder nor a hub id"):
        resolve_source("not a model")


def test_runs_are_compared_in_the_pages_words(tmp_path):
    from studio.config import RunConfig
    from studio.door.runs import compare
    from studio.runs.folder import RunDir

    for name, lr, resolved in (("a", -1.0, 0.001), ("b", 2e-4, 2e-4)):
        run = RunDir.create(tmp_path, name)
        config = RunConfig().replace({"name": name, "train": {"learning_rate": lr}})
        run.update_record(config, resolved={"learning_rate": resolved},
                          eval_summary={"val_a": {"macro_f1": 0.81 if name == "a" else 0.79}})
    rows = {r["setting"]: (r["a"], r["b"]) for r in compare("a", "b", tmp_path)}
    assert rows["Learning rate"] == ("auto → 0.001", 0.0002)  # an auto setting with what it became
    assert rows["Val A macro-F1"] == (0.81, 0.79)
    assert not [s for s in rows if "." in s.split(" ")[0] and s.split(".")[0] in ("train", "eval", "lora", "data")]
