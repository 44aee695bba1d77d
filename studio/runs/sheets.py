"""CSV files that people open in a spreadsheet (predictions, disagreements, label edits): a cell that starts like a
formula (=, +, -, @, or a tab or carriage return before one) is written with a leading apostrophe, so a spreadsheet
shows it as text instead of running it (CSV injection). Only text cells change; numbers stay numbers. Files the
studio reads back as data (a cleaned copy of an upload, JSONL and Parquet outputs) are written unchanged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from studio.files import written_atomically

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (and column names) cannot start a formula."""
    def safe(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(safe)
    out.columns = [safe(c) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | Path, **kwargs) -> Path:
    """``frame`` as a CSV for people, to a temporary name first."""
    path = Path(path)
    with written_atomically(path) as tmp:
        for_spreadsheets(frame).to_csv(tmp, index=False, **kwargs)
    return path
