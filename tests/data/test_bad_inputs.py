"""The bad-input list: each one is a clear StudioError (or a reported warning), never a traceback."""

import json

import pytest

from studio.config import DataRecipe
from studio.data.prepare import prepare_data
from studio.data.table import load_table
from studio.errors import StudioError


def rows_csv(pairs):
    return "text,label\n" + "\n".join(f"{t},{lb}" for t, lb in pairs) + "\n"


def two_classes(n=12):
    return [(f"post number {i} about {'rules' if i % 3 == 0 else 'lathes'}", "RQ" if i % 3 == 0 else "O")
            for i in range(n)]


@pytest.mark.parametrize("content", ["", "   \n\n  \n"])
def test_empty_file(write, content):
    with pytest.raises(StudioError, match="empty"):
        load_table(write("e.csv", content))


def test_binary_garbage(write):
    import random

    rng = random.Random(0)
    garbage = bytes(rng.randrange(256) for _ in range(4000))
    with pytest.raises(StudioError, match="binary data"):
        load_table(write("g.csv", garbage))


def test_single_class(write):
    path = write("s.csv", rows_csv([(f"post {i}", "Other") for i in range(10)]))
    with pytest.raises(StudioError, match="Only one class .*'Other', 10 rows"):
        load_table(path)


def test_one_row_per_class(write):
    path = write("o.csv", rows_csv([("first post", "A"), ("second post", "B"), ("third", "B")]))
    with pytest.raises(StudioError, match="'A' has only 1 row"):
        load_table(path)


def test_label_column_with_hundreds_of_values(write):
    pairs = [(f"text {i}", f"id-{i}") for i in range(300)]
    path = write("ids.csv", "message,category\n" + "\n".join(f"{t},{lb}" for t, lb in pairs))
    with pytest.raises(StudioError, match="300 distinct values .* not labels"):
        load_table(path)


def test_unbalanced_quote(write):
    path = write("q.csv", 'text,label\nfine post,A\n"this quote never closes,B\nmore,A\nand more,B\n')
    with pytest.raises(StudioError, match="unbalanced quote.*line 3 never closes"):
        load_table(path)


def test_wrong_column_name(write):
    path = write("d.csv", rows_csv(two_classes()))
    with pytest.raises(StudioError, match="Text column 'body' not found .* Columns are: text, label"):
        load_table(path, text_column="body")


def test_file_over_size_limit(write):
    path = write("big.csv", rows_csv(two_classes()) + "x,O\n" * 60_000)
    with pytest.raises(StudioError, match="over the 0.1 MB limit"):
        load_table(path, max_mb=0.1)


def test_single_column(write):
    with pytest.raises(StudioError, match="single column"):
        load_table(write("one.csv", "text\nhello\nworld\nagain\n"))


def test_missing_file():
    with pytest.raises(StudioError, match="File not found"):
        load_table("/nonexistent/data.csv")


def test_invalid_json(write):
    with pytest.raises(StudioError, match="not valid JSON"):
        load_table(write("d.json", '[{"text": "a", "label": "b"},'))


def test_mostly_broken_jsonl(write):
    lines = ['{"text": "a", "label": "x"}', "not json", "{broken", '{"text": "b", "label": "y"}']
    with pytest.raises(StudioError, match="2 of 4 lines are malformed"):
        load_table(write("d.jsonl", "\n".join(lines)))


def test_few_malformed_lines_are_dropped_with_reason(write):
    lines = [json.dumps({"text": f"post {i}", "label": "AB"[i % 2]}) for i in range(40)] + ["{oops"]
    table = load_table(write("d.jsonl", "\n".join(lines)))
    entry = next(d for d in table.dropped if d["reason"] == "malformed line")
    assert entry["count"] == 1 and entry["rows"] == [41]


def test_rows_with_wrong_field_count_are_reported(write):
    body = rows_csv(two_classes(40)) + "stray,comma,here\n"
    table = load_table(write("d.csv", body))
    entry = next(d for d in table.dropped if d["reason"] == "malformed line")
    assert entry["rows"] == [42]
    assert "3 fields instead of 2" in entry["details"][0]


def test_long_texts_are_counted_and_truncated(write, tiny_tokenizer):
    pairs = two_classes(30) + [("word " * 400, "O"), ("lathe " * 300, "RQ")]
    path = write("long.csv", rows_csv(pairs))
    recipe = DataRecipe(path=str(path), rubric="Answer RQ or O.")
    prepared = prepare_data(recipe, tiny_tokenizer, max_seq_length=128)
    assert prepared.truncated == 2
    assert any("2 texts are longer than max_seq_length=128" in w for w in prepared.warnings)
    for frame in (prepared.train, prepared.split.val_a, prepared.split.val_b):
        for text in frame["text"]:
            prompt = tiny_tokenizer.apply_chat_template(
                [{"role": "system", "content": prepared.rubric}, {"role": "user", "content": text},
                 {"role": "assistant", "content": "RQ"}], tokenize=True)
            ids = prompt["input_ids"] if isinstance(prompt, dict) else prompt
            assert len(ids) <= 128


def test_rubric_too_long_for_max_seq_length(write, tiny_tokenizer):
    path = write("d.csv", rows_csv(two_classes(30)))
    recipe = DataRecipe(path=str(path), rubric="rule " * 200)
    with pytest.raises(StudioError, match="Shorten the rubric or raise max_seq_length"):
        prepare_data(recipe, tiny_tokenizer, max_seq_length=64)


def test_duplicate_codes_rejected(write):
    path = write("d.csv", rows_csv(two_classes(30)))
    with pytest.raises(StudioError, match="share the code"):
        prepare_data(DataRecipe(path=str(path), label_codes={"RQ": "X", "O": "x"}))


def test_text_and_label_same_column(write):
    with pytest.raises(StudioError, match="both 'text'"):
        load_table(write("d.csv", rows_csv(two_classes())), text_column="text", label_column="text")
