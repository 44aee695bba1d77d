"""Fuzzing the file readers and the config loader with hypothesis: every outcome is a table (or a config) or a
StudioError with a message, never another exception and never a hang (hypothesis' deadline)."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.config import RunConfig
from studio.data.table import load_table
from studio.errors import StudioError

FUZZ = settings(max_examples=150, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Text that looks like data: delimiters, quotes, newlines, BOMs, odd Unicode, NULs, labels that repeat.
CELL = st.one_of(st.text(alphabet=st.sampled_from(list("ab ,;\t|\"'\n\r\\{}[]:xyzé€\u2028\ufeff\0")),
                         max_size=30),
                 st.sampled_from(["Rules Question", "Other", "text", "label"]))
ROW = st.lists(CELL, min_size=1, max_size=4)
LABEL = st.sampled_from(["Rules Question", "Other", ""])  # blank: a dropped row
GOOD = [("can I post links here?", "Rules Question"), ("is selling allowed?", "Rules Question"),
        ("my lathe build", "Other"), ("glue for oak", "Other")]  # every file has two usable classes
WORDS = st.text(alphabet=st.sampled_from(list("abcdefgh ,;\t|\"'\n\ré€")), min_size=1, max_size=40)


def read(suffix: str, data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            table = load_table(path)
        except StudioError as err:
            assert str(err).strip(), "an error must say something"
            return None
        assert len(table.frame) >= 1 and {"text", "label"} <= set(table.frame.columns)
        assert table.frame["text"].map(lambda t: isinstance(t, str) and t != "").all()
        return table


TSV_PLAIN = str.maketrans({'"': "'", "\n": " ", "\r": " ", "\t": " "})


def quote(cell: str, sep: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in (sep, '"', "\n", "\r")) else cell


@FUZZ
@given(rows=st.lists(ROW, max_size=12), sep=st.sampled_from([",", "\t", ";", "|"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
def test_delimited_text_is_a_table_or_a_clear_error(rows, sep, encoding):
    text = "\n".join(sep.join(r) for r in rows)
    read(".csv" if sep == "," else ".tsv", text.encode(encoding, errors="replace"))


@FUZZ
@given(rows=st.lists(st.tuples(WORDS, LABEL), min_size=4, max_size=30), sep=st.sampled_from([",", "\t", ";"]),
       header=st.booleans(), junk=st.lists(ROW, max_size=3), encoding=st.sampled_from(["utf-8", "utf-16"]))
def test_labelled_files_with_messy_text_read_as_tables(rows, sep, header, junk, encoding):
    """Mostly well-formed files (quoted as a spreadsheet writes them) with messy texts, blank labels and a few junk
    rows: a table whenever two labels have usable rows. TSV keeps quotes literal unless the whole file is quoted
    (the SMS-style files of the data issue), so its texts here have no quotes, tabs or line breaks."""
    if sep == "\t":
        rows = [(t.translate(TSV_PLAIN), lb) for t, lb in rows]
    lines = ([sep.join(["text", "label"])] if header else []) + [sep.join([quote(t, sep), lb])
                                                                 for t, lb in GOOD + rows]
    lines += [sep.join(quote(c, sep) for c in r) for r in junk]
    table = read(".tsv" if sep == "\t" else ".csv", "\n".join(lines).encode(encoding))
    if not junk:
        assert table is not None, lines  # well-formed: always a table
    if table is not None:
        assert set(table.frame["label"]) <= {"Rules Question", "Other"} | {
            c.strip() for r in junk for c in r}


@FUZZ
@given(records=st.lists(st.fixed_dictionaries({"text": WORDS, "label": LABEL}), min_size=2, max_size=20),
       extra=st.lists(st.one_of(st.dictionaries(st.sampled_from(["text", "label", "x"]), st.one_of(
           CELL, st.integers(), st.none())), st.integers()), max_size=3))
def test_jsonl_records_read_as_tables(records, extra):
    good = [{"text": t, "label": lb} for t, lb in GOOD]
    table = read(".jsonl", "\n".join(json.dumps(r) for r in good + records + extra).encode())
    if not extra:
        assert table is not None  # well-formed: always a table
    if table is not None:
        texts = {r["text"].strip() for r in good + records}
        assert set(table.frame["text"]) <= texts | {str(e.get("text", "")).strip() for e in extra
                                                    if isinstance(e, dict)}


@FUZZ
@given(records=st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["text", "label", "post", "category", "x"]),
                    st.one_of(CELL, st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=2)),
                    max_size=4),
    CELL, st.integers(), st.none()), max_size=10))
def test_jsonl_is_a_table_or_a_clear_error(records):
    read(".jsonl", "\n".join(json.dumps(r) for r in records).encode())


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".parquet",
                                                              ".xlsx", ".txt"]))
def test_random_bytes_never_crash_a_reader(data, suffix):
    read(suffix, data)


SETTING = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), CELL),
                       lambda inner: st.one_of(st.lists(inner, max_size=3),
                                               st.dictionaries(CELL, inner, max_size=3)), max_leaves=6)


@FUZZ
@given(section=st.sampled_from(["data", "model", "lora", "train", "name", "bogus"]),
       key=st.sampled_from(["r", "lora_alpha", "target_modules", "max_steps", "learning_rate", "load_in_4bit",
                            "balance", "label_codes", "loftq_config", "name", "rank", "val_fraction"]),
       value=SETTING)
def test_config_values_are_accepted_or_named_in_the_error(section, key, value):
    data = {section: {key: value}} if section != "name" else {"name": value}
    try:
        RunConfig.from_dict(data)
    except StudioError as err:
        message = str(err)
        assert (key in message or section in message or "name" in message), message
