"""Every reader, encoding, delimiter and header case the data issue lists."""

import json

import pandas as pd
import pytest

from studio.data.readers import read_table
from studio.data.table import load_table

ROWS = [("How do I appeal a ban?", "Rules Question"), ("My bread is dense", "Other"),
        ('She said "hi", then left', "Other"), ("NA", "Other"), ("Can I sell my lathe here?", "Rules Question")]


def frame():
    return pd.DataFrame(ROWS, columns=["text", "label"])


def assert_rows(table):
    got = list(zip(table.frame["text"], table.frame["label"]))
    assert got == ROWS


def test_csv_with_header(write):
    path = write("d.csv", frame().to_csv(index=False))
    table = load_table(path)
    assert (table.text_column, table.label_column) == ("text", "label")
    assert table.source.header is True and table.source.delimiter == ","
    assert_rows(table)  # "NA" stays text, quotes and commas survive


def test_tsv(write):
    path = write("d.tsv", frame().to_csv(index=False, sep="\t"))
    table = load_table(path)
    assert table.source.delimiter == "\t"
    assert_rows(table)


def test_semicolon_csv_is_sniffed(write):
    path = write("d.csv", frame().to_csv(index=False, sep=";"))
    assert load_table(path).source.delimiter == ";"


def test_jsonl(write):
    path = write("d.jsonl", "\n".join(json.dumps({"text": t, "label": lb}) for t, lb in ROWS) + "\n")
    table = load_table(path)
    assert table.source.format == "jsonl"
    assert_rows(table)


def test_json_records_and_wrapped_records(write):
    records = [{"text": t, "label": lb} for t, lb in ROWS]
    assert_rows(load_table(write("d.json", json.dumps(records))))
    wrapped = load_table(write("w.json", json.dumps({"data": records, "version": 2})))
    assert_rows(wrapped)
    assert any("under the key 'data'" in w for w in wrapped.warnings)


def test_missing_values_are_missing_not_text(write):
    path = write("d.jsonl", '{"text": "a post", "label": "A"}\n{"text": null, "label": "A"}\n'
                            '{"text": "b post", "label": "B"}\n{"text": "c post", "label": "B"}\n'
                            '{"text": "d post", "label": "A"}\n')
    table = load_table(path)
    assert "nan" not in table.frame["text"].tolist() and len(table.frame) == 4
    assert table.dropped[0]["reason"] == "empty text" and table.dropped[0]["rows"] == [2]


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    frame().to_parquet(path)
    assert_rows(load_table(path))


def test_excel_numeric_labels_stay_integers(tmp_path):
    path = tmp_path / "d.xlsx"
    pd.DataFrame({"text": [t for t, _ in ROWS], "label": [1, 0, 0, 0, 1]}).to_excel(path, index=False)
    table = load_table(path)
    assert table.source.format == "excel"
    assert list(table.frame["label"]) == ["1", "0", "0", "0", "1"]
    assert list(table.frame["text"]) == [t for t, _ in ROWS]  # "NA" is a post, not a missing value


def test_headerless_sms_style_tsv(write):
    lines = [
        "ham\tGo until jurong point, crazy.. Available only in bugis n great world la e buffet...",
        "ham\tOk lar... Joking wif u oni...",
        "spam\tFree entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121",
        'ham\t"Hello" he said, and the quote is literal text here',
        "spam\tWINNER!! As a valued network customer you have been selected to receive a prize",
        "ham\tNah I don't think he goes to usf, he lives around here though",
    ]
    path = write("SMSSpamCollection", "\n".join(lines) + "\n")  # no extension, like the classic file
    table = load_table(path)
    assert table.source.header is False and table.source.delimiter == "\t"
    assert (table.text_column, table.label_column) == ("column_2", "column_1")
    assert table.classes == {"ham": 4, "spam": 2}
    assert 'ham\t"Hello"' not in table.frame["text"].tolist()
    assert '"Hello" he said, and the quote is literal text here' in table.frame["text"].tolist()


@pytest.mark.parametrize("encoding,bom", [("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"),
                                          ("utf-16-be", b"\xfe\xff")])
def test_unicode_encodings(write, encoding, bom):
    text = "text,label\nCafé crème question about the rules?,RQ\nÜber cool lathe,Other\nñ,Other\nçà?,RQ\n"
    path = write("d.csv", bom + text.encode(encoding))
    table = load_table(path)
    assert table.frame["text"].tolist()[0] == "Café crème question about the rules?"
    assert table.columns == ["text", "label"]  # the BOM is not glued to the first column name
    assert not any("latin-1" in w for w in table.warnings)


def test_utf16_without_bom(write):
    path = write("d.csv", "text,label\nhello there,A\nbye now,B\nagain,A\nmore,B\n".encode("utf-16-le"))
    assert load_table(path).classes == {"A": 2, "B": 2}


def test_latin1_fallback_is_reported(write):
    text = "text,label\nQuestion sur les règles du forum,RQ\nJ'ai réparé ma chaise,O\nà bientôt,O\nmerci,RQ\n"
    path = write("d.csv", text.encode("latin-1"))
    table = load_table(path)
    assert "Question sur les règles du forum" in table.frame["text"].tolist()
    assert any("not valid UTF-8" in w and "latin-1" in w for w in table.warnings)


def test_header_detection_without_known_names(write):
    body = "\n".join(f"{'x' if i % 2 else 'y'},this is a fairly long sentence number {i} for the detector"
                     for i in range(10))
    with_header = load_table(write("h.csv", "kind,words\n" + body))
    assert with_header.source.header is True and with_header.columns == ["kind", "words"]
    without = load_table(write("n.csv", body))
    assert without.source.header is False and len(without.frame) == 10


def test_forced_header_and_delimiter(write):
    path = write("d.txt", "a|b\nc|d\ne|b\nf|d\n")
    result = read_table(path, header=False, delimiter="|")
    assert len(result.frame) == 4 and result.delimiter == "|"


def test_windows_line_endings(write):
    path = write("d.csv", "text,label\r\nfirst post,A\r\nsecond post,B\r\nthird,A\r\nfourth,B\r\n")
    assert load_table(path).frame["text"].tolist() == ["first post", "second post", "third", "fourth"]


def test_a_large_csv_streams_whole_when_its_first_mib_ends_inside_a_quoted_field(tmp_path):
    """The streaming reader detects the format from the first MiB. That limit counts bytes: with multi-byte
    characters the text holds fewer characters, and a quoted field cut at the limit read as "unbalanced quote" (a
    200k-row prediction of Financial PhraseBank's texts failed so)."""
    from studio.data.stream import HEAD_BYTES, NOTE, open_table

    texts = [f'"Net sales rose by €{i} million, said Åbo\'s CEO, to ""record"" levels ."' if i % 3 else
             f"Profit fell {i} % in Q{i % 4 + 1} ." for i in range(16_000)]
    for pad in range(200):  # a first row long enough that the MiB ends inside a quoted field
        content = "id,text\n" + "\n".join(f"{i},{'x' * pad if i == 0 else t}" for i, t in enumerate(texts)) + "\n"
        cut = content.encode("utf-8")[:HEAD_BYTES].decode("utf-8", errors="ignore").rsplit("\n", 1)[-1]
        if cut.count('"') % 2 == 1:
            break
    path = tmp_path / "large.csv"
    path.write_text(content, encoding="utf-8")
    assert path.stat().st_size > HEAD_BYTES and cut.count('"') % 2 == 1
    table = open_table(path, chunk_rows=5000)
    assert table.rows == 16_000 and table.columns == ["id", "text"]
    frames = list(table.chunks())
    assert sum(len(f) for f in frames) == 16_000 and not any(NOTE in f.columns for f in frames)
    assert frames[0]["text"][1] == 'Net sales rose by €1 million, said Åbo\'s CEO, to "record" levels .'
