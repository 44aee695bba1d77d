"""Label codes and prompt formatting through a real (tiny) tokenizer and its ChatML chat template."""

import tempfile

import pytest

from studio.config import DataRecipe
from studio.data.formatting import ALPACA_PROMPT, encode_prompt, render_prompt, resolve_prompt_format, training_ids
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


def test_chat_row_through_the_template(tiny_tokenizer):
    prompt = render_prompt(tiny_tokenizer, "Answer RQ or O.", "Can I sell here?", "chat")
    assert prompt == ("<|im_start|>system\nAnswer RQ or O.<|im_end|>\n<|im_start|>user\nCan I sell here?"
                      "<|im_end|>\n<|im_start|>assistant\n")
    ids, labels = training_ids(tiny_tokenizer, "Answer RQ or O.", "Can I sell here?", "RQ", "chat")
    prompt_ids = encode_prompt(tiny_tokenizer, prompt, "chat")
    assert ids[:len(prompt_ids)] == prompt_ids  # the very ids the scorer feeds for this text
    assert tiny_tokenizer.decode(ids[len(prompt_ids):]) == "RQ<|im_end|>\n"  # the assistant turn: the code only
    assert labels == [-100] * len(prompt_ids) + ids[len(prompt_ids):]
    assert ids.count(tiny_tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3  # no doubled start token


def test_the_trainer_trains_on_the_rows_as_tokenized(tiny_tokenizer):
    """TRL takes the rows as they are (no tokenization of its own, no BOS guess): the loss covers the code and the
    end of the turn only."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from studio.models.tiny import build_tiny_model

    ids, labels = training_ids(tiny_tokenizer, "Answer RQ or O.", "Can I sell here?", "RQ", "chat")
    with tempfile.TemporaryDirectory() as tmp:
        model = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp, tokenizer=tiny_tokenizer))
        data = Dataset.from_list([{"input_ids": ids, "labels": labels}])
        trainer = SFTTrainer(model=model, processing_class=tiny_tokenizer, train_dataset=data,
                             args=SFTConfig(output_dir=tmp, report_to="none", max_steps=1, use_cpu=True))
        row = trainer.train_dataset[0]
    assert row["input_ids"] == ids and row["labels"] == labels
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    assert tiny_tokenizer.decode(trained) == "RQ<|im_end|>\n"  # the code and the end of the turn, nothing else


def test_alpaca_for_models_without_chat_template(tiny_tokenizer):
    import copy

    base = copy.deepcopy(tiny_tokenizer)
    base.chat_template = None
    assert resolve_prompt_format(base, "auto") == "alpaca"
    with pytest.raises(StudioError, match="no chat template"):
        resolve_prompt_format(base, "chat")
    prompt = render_prompt(base, "Classify.", "Some post", "alpaca")
    assert prompt == ALPACA_PROMPT.format("Classify.", "Some post") and prompt.endswith("### Response:\n")
    ids, labels = training_ids(base, "Classify.", "Some post", "O", "alpaca")
    answer = [t for t, label in zip(ids, labels) if label != -100]
    assert ids[:-len(answer)] == encode_prompt(base, prompt, "alpaca")
    assert base.decode(answer) == "O" + base.eos_token  # the code, then EOS


def test_prepare_records_the_recipe(tiny_tokenizer):
    from conftest import SAMPLE

    recipe = DataRecipe(path=str(SAMPLE))
    prepared = prepare_data(recipe, tiny_tokenizer, max_seq_length=512)
    assert recipe.label_codes == {"Other": "O", "Rules Question": "RQ"}
    assert len(recipe.sha256) == 64 and recipe.text_column == "text"
    assert recipe.counts["train_after"]["Rules Question"] >= 0.42 * recipe.counts["train_after"]["Other"]
    assert prepared.rubric.startswith("You are a moderation assistant")
    rows = prepared.tokenized(tiny_tokenizer)
    assert len(rows) == len(prepared.train)
    answers = {tiny_tokenizer.decode([t for t, label in zip(r["input_ids"], r["labels"]) if label != -100])
               for r in rows}
    assert answers == {"O<|im_end|>\n", "RQ<|im_end|>\n"}
