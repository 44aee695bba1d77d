"""A read file → a validated two-column table (text, label) plus everything the user should know about it.

Detects the text and label columns (or takes the user's choice), strips whitespace, drops unusable rows with
their reasons, removes exact duplicates and reports conflicting ones (same text, different labels: label noise).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from studio.data.readers import DEFAULT_MAX_FILE_MB, DELIMITER_NAMES, ReadResult, read_table
from studio.errors import StudioError
from studio.text import named_list

TEXT_NAMES = ["text", "message", "post", "content", "body", "sentence", "review", "comment", "input", "question",
              "sms", "tweet", "document", "utterance", "query", "title", "v2"]
LABEL_NAMES = ["label", "labels", "class", "category", "target", "tag", "intent", "sentiment", "output", "y",
               "topic", "v1"]
DEFAULT_MAX_CLASSES = 1000  # a column is judged by its rows per class (below); this only bounds the views' cost
MIN_ROWS_PER_CLASS = 2  # one to train on, one to validate on
FEW_ROWS_PER_CLASS = 10
EXAMPLE_ROWS = 20  # row numbers listed per drop reason


@dataclass
class LabeledTable:
    """Clean rows with columns ``text``, ``label`` and ``row`` (the line/record number in the source file)."""

    frame: pd.DataFrame
    text_column: str
    label_column: str
    columns: list[str]
    source: ReadResult
    input_rows: int
    dropped: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""  # the file's content hash, taken when it was read

    @property
    def classes(self) -> dict[str, int]:
        """Label → count, largest first (ties by name, so the order is stable)."""
        counts = self.frame["label"].value_counts()
        return {k: int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}

    @property
    def minority_label(self) -> str:
        return list(self.classes)[-1]

    def facts(self) -> dict:
        """Everything but the rows, JSON-ready: with the rows, what ``from_rows`` rebuilds the checked table from (a
        run started by the web app hands its child process the table Start read, not the file to read again)."""
        read = self.source
        return {"text_column": self.text_column, "label_column": self.label_column, "columns": self.columns,
                "input_rows": self.input_rows, "dropped": self.dropped, "conflicts": self.conflicts,
                "warnings": self.warnings, "sha256": self.sha256,
                "read": {"format": read.format, "encoding": read.encoding, "delimiter": read.delimiter,
                         "header": read.header}}

    @classmethod
    def from_rows(cls, frame: pd.DataFrame, facts: dict) -> "LabeledTable":
        """The table ``facts`` describes, with its rows (the raw file's own columns are not kept)."""
        read = facts["read"]
        source = ReadResult(frame=frame.iloc[0:0], format=read["format"], encoding=read["encoding"],
                            delimiter=read["delimiter"], header=read["header"])
        return cls(frame=frame, text_column=facts["text_column"], label_column=facts["label_column"],
                   columns=list(facts["columns"]), source=source, input_rows=int(facts["input_rows"]),
                   dropped=list(facts["dropped"]), conflicts=list(facts["conflicts"]),
                   warnings=list(facts["warnings"]), sha256=facts["sha256"])

    def summary(self) -> dict:
        """What ``studio inspect --json`` prints and the UI shows."""
        read = self.source
        return {
            "rows": len(self.frame),
            "input_rows": self.input_rows,
            "columns": self.columns,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "classes": self.classes,
            "dropped": self.dropped,
            "conflicts": self.conflicts,
            "warnings": self.warnings,
            "format": read.format,
            "encoding": read.encoding,
            "delimiter": DELIMITER_NAMES.get(read.delimiter, read.delimiter),
            "header": read.header,
        }


def load_table(
    path: str | os.PathLike,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    header: bool | None = None,
    delimiter: str | None = None,
    max_mb: float = DEFAULT_MAX_FILE_MB,
    max_classes: int = DEFAULT_MAX_CLASSES,
    drop_duplicates: bool = True,
) -> LabeledTable:
    """Read and validate a labelled file; raises StudioError with an actionable message when it is unusable."""
    source = read_table(path, max_mb=max_mb, header=header, delimiter=delimiter)
    return validate_table(source, text_column=text_column, label_column=label_column,
                          max_classes=max_classes, drop_duplicates=drop_duplicates, name=os.path.basename(path))


def validate_table(
    source: ReadResult,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    max_classes: int = DEFAULT_MAX_CLASSES,
    drop_duplicates: bool = True,
    name: str = "the file",
) -> LabeledTable:
    frame = source.frame
    columns = list(frame.columns)
    text_column, label_column = _pick_columns(frame, text_column, label_column, name)
    table, dropped = _usable_rows(source, text_column, label_column, drop_duplicates)
    result = LabeledTable(frame=table, text_column=text_column, label_column=label_column, columns=columns,
                          source=source, input_rows=len(frame) + len(source.bad_lines), dropped=dropped,
                          warnings=list(source.warnings))
    if table.empty:
        raise StudioError(f"{name}: no usable rows: every row has an empty text or a missing label "
                          f"(columns used: text='{text_column}', label='{label_column}').")
    _check_classes(result, name, max_classes)
    result.conflicts = find_conflicts(table)
    if result.conflicts:
        n_rows = sum(len(c["rows"]) for c in result.conflicts)
        result.warnings.append(
            f"{len(result.conflicts)} texts appear with different labels ({n_rows} rows): label-noise candidates. "
            "They are kept together in one split; review them in the conflicts list.")
    if source.format in ("csv", "tsv") and source.header is False:
        result.warnings.append(f"No header row found: columns named {', '.join(columns)}; "
                               f"using text='{text_column}', label='{label_column}'.")
    return result


def file_columns(path: str | os.PathLike, *, max_mb: float = DEFAULT_MAX_FILE_MB) -> tuple[list[str], str, str]:
    """A readable file's columns and the detected text and label columns, before its rows are judged."""
    return columns_of(read_table(path, max_mb=max_mb), os.path.basename(path))


def columns_of(source: ReadResult, name: str) -> tuple[list[str], str, str]:
    """A read file's columns and the detected text and label columns, before its rows are judged (an upload is kept
    when it can be read, so that a refused label column can be changed and checked again)."""
    text_column, label_column = _pick_columns(source.frame, None, None, name)
    return list(source.frame.columns), text_column, label_column


def _pick_columns(frame: pd.DataFrame, text_column: str | None, label_column: str | None,
                  name: str) -> tuple[str, str]:
    """The text and label columns: as asked, else detected."""
    columns = list(frame.columns)
    if len(columns) < 2:
        raise StudioError(f"{name} has a single column ({columns[0] if columns else 'none'}); a table needs a text "
                          "column and a label column.")
    text_column = resolve_column(text_column, columns, name, "text", "--text-col")
    label_column = resolve_column(label_column, columns, name, "label", "--label-col")
    if text_column is None and label_column is None and _by_name(columns, TEXT_NAMES, None) is None:
        # Unnamed columns: few distinct values is the surer sign (a label), length the weaker one (short texts
        # beside long label names exist; found by fuzzing).
        label_column = detect_label_column(frame)
    if text_column is None:
        text_column = detect_text_column(frame, exclude=label_column)
    if label_column is None:
        label_column = detect_label_column(frame, exclude=text_column)
    if text_column == label_column:
        raise StudioError(f"The text and label columns are both '{text_column}'; pick two different columns.")
    return text_column, label_column


def _usable_rows(source: ReadResult, text_column: str, label_column: str,
                 drop_duplicates: bool) -> tuple[pd.DataFrame, list[dict]]:
    """(text, label, row) of the rows that can be used, and what was dropped and why."""
    frame = source.frame
    texts = [_strip(v) for v in frame[text_column]]
    labels = [_strip(v) for v in frame[label_column]]
    table = pd.DataFrame({"text": texts, "label": labels, "row": source.source_rows or range(1, len(frame) + 1)})
    dropped: list[dict] = []
    if source.bad_lines:
        dropped.append(_drop_entry("malformed line", [n for n, _ in source.bad_lines],
                                   details=[f"line {n}: {why}" for n, why in source.bad_lines[:EXAMPLE_ROWS]]))
    empty = table["text"].isna()
    if empty.any():
        dropped.append(_drop_entry("empty text", table.loc[empty, "row"].tolist()))
    missing = table["label"].isna() & ~empty
    if missing.any():
        dropped.append(_drop_entry("missing label", table.loc[missing, "row"].tolist()))
    table = table[~empty & ~missing]
    if drop_duplicates:
        dup = table.duplicated(subset=["text", "label"], keep="first")
        if dup.any():
            dropped.append(_drop_entry("exact duplicate (same text and label as an earlier row)",
                                       table.loc[dup, "row"].tolist()))
            table = table[~dup]
    return table.reset_index(drop=True), dropped


def _strip(value):
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _drop_entry(reason: str, rows: list[int], details: list[str] | None = None) -> dict:
    entry = {"reason": reason, "count": len(rows), "rows": [int(r) for r in rows[:EXAMPLE_ROWS]]}
    if details:
        entry["details"] = details
    return entry


def resolve_column(wanted: str | None, columns: list[str], name: str, role: str, flag: str) -> str | None:
    """The user's column choice as the file spells it (any case), None when not given; an error names the columns."""
    if wanted is None or wanted == "":
        return None
    if wanted in columns:
        return wanted
    by_lower = {c.lower(): c for c in columns}
    if wanted.lower() in by_lower:
        return by_lower[wanted.lower()]
    raise StudioError(f"{role.capitalize()} column '{wanted}' not found in {name}. "
                      f"Columns are: {', '.join(columns)}. Pick one of them with {flag}.")


def _by_name(columns: list[str], names: list[str], exclude: str | None) -> str | None:
    lowered = {c.lower().strip(): c for c in columns if c != exclude}
    for n in names:
        if n in lowered:
            return lowered[n]
    return None


def detect_text_column(frame: pd.DataFrame, exclude: str | None = None) -> str:
    """A column named like text, else the column with the longest values on average."""
    named = _by_name(list(frame.columns), TEXT_NAMES, exclude)
    if named:
        return named
    candidates = [c for c in frame.columns if c != exclude]
    lengths = {c: frame[c].dropna().map(len).mean() if frame[c].notna().any() else 0 for c in candidates}
    return max(candidates, key=lambda c: (lengths[c], -candidates.index(c)))


def detect_label_column(frame: pd.DataFrame, exclude: str | None = None) -> str:
    """A column named like a label, else the column with the fewest distinct values (at least two)."""
    named = _by_name(list(frame.columns), LABEL_NAMES, exclude)
    if named:
        return named
    candidates = [c for c in frame.columns if c != exclude]

    def key(c):
        distinct = frame[c].dropna().map(str.strip).nunique()
        return (distinct < 2, distinct, candidates.index(c))

    return min(candidates, key=key)


def _check_classes(table: LabeledTable, name: str, max_classes: int) -> None:
    classes = table.classes
    col = table.label_column
    single = sum(1 for v in classes.values() if v == 1)
    if len(classes) > 2 and single > len(classes) / 2:  # mostly unique values: a text or ID column, not labels
        raise StudioError(
            f"The label column '{col}' has {len(classes)} distinct values in {len(table.frame)} rows, {single} of "
            f"them on a single row: that looks like a text or ID column, not labels. Pick the label column with "
            f"--label-col (columns: {', '.join(table.columns)}).")
    if len(classes) > max_classes:
        raise StudioError(
            f"The label column '{col}' has {len(classes)} classes, more than the {max_classes} allowed ('Most "
            f"classes allowed', --max-classes). Raise it if you really have that many classes, or merge rare ones.")
    if len(classes) < 2:
        only = next(iter(classes))
        raise StudioError(
            f"Only one class in '{col}' ('{only}', {classes[only]} rows): a classifier needs at least two labels. "
            "Check that the label column is right, or add examples of the other class(es).")
    tiny = [k for k, v in classes.items() if v < MIN_ROWS_PER_CLASS]
    if tiny:
        raise StudioError(
            f"Class{'es' if len(tiny) > 1 else ''} {named_list(map(repr, tiny))} "
            f"{'have' if len(tiny) > 1 else 'has'} only 1 row: each class needs at least {MIN_ROWS_PER_CLASS} "
            "(one to train on, one to validate). Add examples, or merge or remove that class.")
    few = [f"'{k}' ({v})" for k, v in classes.items() if v < FEW_ROWS_PER_CLASS]
    if few:
        table.warnings.append(f"Very few rows for {named_list(few)}: the model can barely learn these classes and "
                              f"their validation scores will be noisy. Aim for at least {FEW_ROWS_PER_CLASS * 5}.")
    top, bottom = max(classes.values()), min(classes.values())
    if top >= 4 * bottom:
        table.warnings.append(
            f"Imbalanced classes ({top}:{bottom}, minority '{table.minority_label}'): train on a 70/30 or 50/50 "
            "balance (oversampling) and judge the model by minority recall on both validation sets.")


def find_conflicts(frame: pd.DataFrame) -> list[dict]:
    """Texts that appear with more than one label: [{text, labels: {label: n}, rows: [...]}]."""
    labels_per_text = frame.groupby("text")["label"].nunique()
    conflicted = labels_per_text[labels_per_text > 1].index
    out = []
    for text in conflicted:
        rows = frame[frame["text"] == text]
        out.append({"text": text, "labels": {k: int(v) for k, v in rows["label"].value_counts().items()},
                    "rows": [int(r) for r in rows["row"]]})
    return sorted(out, key=lambda c: min(c["rows"]))
