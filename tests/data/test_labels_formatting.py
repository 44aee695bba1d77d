"""Label codes and prompt formatting through a real (tiny) tokenizer and its ChatML chat template."""

import tempfile

import pytest

from studio.config import DataRecipe
from studio.data.formatting import ALPACA_PROMPT, render_prompt, resolve_prompt_format, to_example
from studio.data.labels import code_report, suggest_codes, validate_codes
from studio.data.prepare import prepare_data
from studio.errors import StudioError


def test_suggest_codes_follow_the_guide():
    assert suggest_codes(["Rules Question", "Other"]) == {"Rules Question": "RQ", "Other": "O"}


def test_suggest_codes_resolve_collisions_and_keep_short_labels():
    codes = suggest_codes(["Other", "Offer", "Order issue"])
    assert len({c.lower() for c in codes.values()}) == 3
    assert codes["Order issue"] == "OI"
    assert suggest_codes(["ham", "spam"]) == {"ham": "ham", "spam": "spam"}
    assert suggest_codes(["0", "1"]) == {"0": "0", "1": "1"}


def test_validate_codes_fills_missing_and_rejects_bad():
    assert validate_codes({"Rules Question": "Q"}, ["Rules Question", "Other"]) == {"Rules Question": "Q",
                                                                                   "Other": "O"}
    with pytest.raises(StudioError, match="not in the data"):
        validate_codes({"Spam": "S"}, ["Rules Question", "Other"])
    with pytest.raises(StudioError, match="is empty"):
        validate_codes({"Rules Question": " ", "Other": "O"}, ["Rules Question", "Other"])


def test_code_report_counts_tokens(tiny_tokenizer):
    rows, _ = code_report({"Rules Question": "RQ", "Other": "O"}, tiny_tokenizer)
    for row in rows:
        assert row["tokens"] == len(tiny_tokenizer.encode(row["code"], add_special_tokens=False))
        assert "".join(row["token_strings"]) == row["code"]


def test_first_token_clash_and_long_codes_warn(tiny_tokenizer):
    a, b = "Rules Question", "Rules Other"
    ids_a = tiny_tokenizer.encode(a, add_special_tokens=False)
    ids_b = tiny_tokenizer.encode(b, add_special_tokens=False)
    assert ids_a[0] == ids_b[0]  # precondition: the two codes share their first token
    _, warnings = code_report({"x": a, "y": b}, tiny_tokenizer)
    assert any("start with the same token" in w for w in warnings)
    long_code = "zqxjvkw"
    assert len(tiny_tokenizer.encode(long_code, add_special_tokens=False)) > 3
    rows, warnings = code_report({"x": long_code, "y": "O"}, tiny_tokenizer)
    assert rows[0]["warnings"] and any("tokens long" in w for w in warnings)
    _, clean = code_report({"Rules Question": "RQ", "Other": "O"}, tiny_tokenizer)
    assert clean == []


def test_chat_example_through_the_template(tiny_tokenizer):
    example = to_example("Answer RQ or O.", "Can I sell here?", "RQ", "chat")
    prompt = render_prompt(tiny_tokenizer, "Answer RQ or O.", "Can I sell here?", "chat")
    full = tiny_tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=False)
    assert prompt == ("<|im_start|>system\nAnswer RQ or O.<|im_end|>\n<|im_start|>user\nCan I sell here?"
                      "<|im_end|>\n<|im_start|>assistant\n")
    assert full == prompt + "RQ<|im_end|>\n"  # the assistant turn holds the code only


def test_trl_masks_everything_but_the_code(tiny_tokenizer):
    """TRL's prompt-completion format: the loss covers the assistant's code (+ end of turn) only."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from studio.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp, tokenizer=tiny_tokenizer))
        data = Dataset.from_list([to_example("Answer RQ or O.", "Can I sell here?", "RQ", "chat")])
        trainer = SFTTrainer(model=model, processing_class=tiny_tokenizer, train_dataset=data,
                             args=SFTConfig(output_dir=tmp, report_to="none", max_steps=1, use_cpu=True))
        row = trainer.train_dataset[0]
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    assert tiny_tokenizer.decode(trained) == "RQ<|im_end|>\n"  # the code and the end of the turn, nothing else


def test_alpaca_for_models_without_chat_template(tiny_tokenizer):
    import copy

    base = copy.deepcopy(tiny_tokenizer)
    base.chat_template = None
    assert resolve_prompt_format(base, "auto") == "alpaca"
    with pytest.raises(StudioError, match="no chat template"):
        resolve_prompt_format(base, "chat")
    example = to_example("Classify.", "Some post", "O", "alpaca", eos_token=base.eos_token)
    assert example["prompt"] == ALPACA_PROMPT.format("Classify.", "Some post")
    assert example["completion"] == "O" + base.eos_token
    assert render_prompt(base, "Classify.", "Some post", "alpaca").endswith("### Response:\n")


def test_prepare_records_the_recipe(tiny_tokenizer):
    from conftest import SAMPLE

    recipe = DataRecipe(path=str(SAMPLE))
    prepared = prepare_data(recipe, tiny_tokenizer, max_seq_length=512)
    assert recipe.label_codes == {"Other": "O", "Rules Question": "RQ"}
    assert len(recipe.sha256) == 64 and recipe.text_column == "text"
    assert recipe.counts["train_after"]["Rules Question"] >= 0.42 * recipe.counts["train_after"]["Other"]
    assert prepared.rubric.startswith("You are a moderation assistant")
    examples = prepared.examples()
    assert len(examples) == len(prepared.train)
    assert {e["completion"][0]["content"] for e in examples} == {"O", "RQ"}
