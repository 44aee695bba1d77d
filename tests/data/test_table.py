"""Column detection, cleaning, drop reasons, duplicates and conflicts."""

from studio.data.table import load_table


def test_columns_detected_by_content_when_names_say_nothing(write):
    rows = [(f"id{i}", "A" if i % 2 else "B", f"a much longer free text entry number {i} with words") for i in
            range(12)]
    path = write("d.csv", "c1,c2,c3\n" + "\n".join(",".join(r) for r in rows))
    table = load_table(path)
    assert (table.text_column, table.label_column) == ("c3", "c2")


def test_user_choice_wins_and_is_case_insensitive(write):
    path = write("d.csv", "Text,Label,Other\nfirst post,A,x\nsecond post,B,y\nthird post,A,x\nfourth,B,y\n")
    table = load_table(path, text_column="text", label_column="other")
    assert (table.text_column, table.label_column) == ("Text", "Other")


def test_cleaning_reports_every_drop_with_rows(write):
    body = ("text,label\n  padded text  , A \nsecond,B\n   ,A\nno label,\nsecond,B\nsame text,A\nsame text,B\n"
            "fine,A\nalso fine,B\n")
    table = load_table(write("d.csv", body))
    reasons = {d["reason"].split(" (")[0]: d for d in table.dropped}
    assert reasons["empty text"]["rows"] == [4]
    assert reasons["missing label"]["rows"] == [5]
    assert reasons["exact duplicate"]["rows"] == [6]
    assert table.frame["text"].tolist()[0] == "padded text" and table.frame["label"].tolist()[0] == "A"
    assert table.conflicts == [{"text": "same text", "labels": {"A": 1, "B": 1}, "rows": [7, 8]}]
    assert any("label-noise" in w for w in table.warnings)
    assert table.summary()["rows"] == 6 and table.input_rows == 9


def test_duplicates_kept_when_asked(write):
    table = load_table(write("d.csv", "text,label\na,A\na,A\nb,B\nc,B\n"), drop_duplicates=False)
    assert len(table.frame) == 4


def test_imbalance_warning_names_the_minority(write):
    body = "text,label\n" + "\n".join(f"post {i},{'RQ' if i < 5 else 'O'}" for i in range(60))
    table = load_table(write("d.csv", body))
    assert any("minority 'RQ'" in w for w in table.warnings)
