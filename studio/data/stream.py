"""A file's rows in chunks, for classifying files of any size in constant memory: CSV / TSV (the delimiter, quoting,
header and encoding detected on the file's head, as ``read_table`` detects them), JSONL and Parquet are read as they
go; JSON and Excel (whole documents by nature) are read once and cut into chunks.

Every data row of the file is one row here, in the file's order: a line with the wrong number of fields comes with
``None`` cells and a note, never dropped, so a prediction file always has one row per input row.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.data.readers import (_detect_format, _quoting_for, _read_delimited, _unique_names, decode_bytes,
                                 read_table)
from studio.errors import StudioError

HEAD_BYTES = 1 << 20  # what the detection reads: the first MiB
NOTE = "__note__"  # a column the stream adds for rows it could not read whole


@dataclass
class TableStream:
    path: Path
    format: str
    columns: list[str]
    rows: int  # data rows in the file (counted once, for progress and ETA)
    chunk_rows: int
    _chunks: object = None

    def chunks(self, skip: int = 0) -> Iterator[pd.DataFrame]:
        """DataFrames of string cells (``None``: missing), ``chunk_rows`` rows each but the last, from data row
        ``skip`` on."""
        return self._chunks(skip)


def fingerprint(path: str | Path) -> str:
    """The file's size, modification time and head: what a resumed prediction checks it still reads."""
    path = Path(path)
    stat = path.stat()
    with open(path, "rb") as fh:
        head = hashlib.sha256(fh.read(HEAD_BYTES)).hexdigest()[:16]
    return f"{stat.st_size}:{int(stat.st_mtime)}:{head}"


def open_table(path: str | Path, chunk_rows: int = 256, max_mb: float = 200.0) -> TableStream:
    """The file's columns, row count and chunks. Limits apply to the formats read whole (JSON, Excel) only."""
    path = Path(path)
    if not path.exists() or path.is_dir():
        raise StudioError(f"File not found: {path}. Check the path.")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head.strip():
        raise StudioError(f"{path.name} is empty: it has no rows to classify.")
    fmt = _detect_format(path, head)
    if fmt == "parquet":
        return _parquet(path, chunk_rows)
    text_head, encoding, _ = decode_bytes(head, path.name)
    if fmt == "jsonl" or (fmt == "delimited" and text_head.lstrip().startswith("{")):
        return _jsonl(path, chunk_rows, encoding)
    if fmt in ("json", "excel") or (fmt == "delimited" and text_head.lstrip().startswith("[")):
        return _whole(path, chunk_rows, max_mb)
    return _delimited(path, chunk_rows, encoding, _whole_lines(text_head, len(head) < HEAD_BYTES), fmt)


def _whole_lines(text_head: str, whole_file: bool) -> str:
    """The head without the line the byte limit cut (a quoted field cut there reads as an unbalanced quote); the
    limit counts bytes, so a head of multi-byte characters is cut though it holds fewer characters. A quoted field
    that spans lines and was cut is dropped too (quoted CSV holds an even number of quote characters; a file whose
    quotes are plain text may not, so at most a few lines go)."""
    if whole_file:
        return text_head
    sample = trimmed = text_head.rsplit("\n", 1)[0]
    for _ in range(50):
        if trimmed.count('"') % 2 == 0:
            return trimmed
        if "\n" not in trimmed:
            break
        trimmed = trimmed.rsplit("\n", 1)[0]
    return sample


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell a string, missing values ``None`` (as ``read_table`` gives them)."""
    cells = [[None if _missing(v) else str(v) for v in row] for row in frame.itertuples(index=False)]
    return pd.DataFrame(cells, columns=frame.columns, dtype=object)  # (DataFrame.map turns None into NaN)


def _missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _parquet(path: Path, chunk_rows: int) -> TableStream:
    import pyarrow.parquet as pq  # (pyarrow: only for Parquet files)

    source = pq.ParquetFile(path)

    def chunks(skip: int):
        seen = 0
        for batch in source.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            if seen + len(frame) > skip:
                yield _cells(frame.iloc[max(0, skip - seen):].reset_index(drop=True))
            seen += len(frame)

    return TableStream(path, "parquet", list(source.schema_arrow.names), source.metadata.num_rows, chunk_rows, chunks)


def _jsonl(path: Path, chunk_rows: int, encoding: str) -> TableStream:
    def lines():
        with open(path, encoding=encoding.replace("utf-8 with BOM", "utf-8-sig"), errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    yield number, line

    columns: list[str] = []
    rows = 0
    for _, line in lines():
        rows += 1
        if rows <= 200:
            try:
                record = json.loads(line)
                columns += [k for k in record if k not in columns] if isinstance(record, dict) else []
            except json.JSONDecodeError:
                continue
    if not columns:
        raise StudioError(f"{path.name}: no JSON object on its first lines; each line should be one object.")

    def chunks(skip: int):
        batch = []
        for index, (number, line) in enumerate(lines()):
            if index < skip:
                continue
            try:
                record = json.loads(line)
                batch.append(record if isinstance(record, dict) else {NOTE: f"line {number}: not a JSON object"})
            except json.JSONDecodeError:
                batch.append({NOTE: f"line {number}: not valid JSON"})
            if len(batch) == chunk_rows:
                yield _records(batch, columns)
                batch = []
        if batch:
            yield _records(batch, columns)

    return TableStream(path, "jsonl", columns, rows, chunk_rows, chunks)


def _records(batch: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in batch], columns=columns)
    frame = _cells(frame)
    notes = [r.get(NOTE) for r in batch]
    if any(notes):
        frame[NOTE] = notes
    return frame


def _whole(path: Path, chunk_rows: int, max_mb: float) -> TableStream:
    frame = read_table(path, max_mb=max_mb).frame

    def chunks(skip: int):
        for start in range(skip, len(frame), chunk_rows):
            yield frame.iloc[start:start + chunk_rows].reset_index(drop=True)

    return TableStream(path, "excel" if path.suffix.lower().startswith(".xls") else "json", list(frame.columns),
                       len(frame), chunk_rows, chunks)


def _delimited(path: Path, chunk_rows: int, encoding: str, text_head: str, fmt: str) -> TableStream:
    """The head decides the delimiter, quoting and header (as ``read_table`` would); then the file is read row by
    row."""
    sample = text_head  # whole lines only (_whole_lines)
    detected = _read_delimited(sample, path.name, delimiter="\t" if fmt == "tsv" else None, header=None,
                               min_columns=1)
    delimiter, header = detected.delimiter, detected.header
    width = len(detected.frame.columns)
    columns = list(detected.frame.columns)
    quoting = _quoting_for(sample, delimiter)
    python_encoding = {"utf-8 with BOM": "utf-8-sig"}.get(encoding, encoding)

    def rows():
        with open(path, encoding=python_encoding, errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, quoting=quoting, strict=False)
            first = True
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                if first and header:
                    first = False
                    continue
                first = False
                yield reader.line_num, row

    count = sum(1 for _ in rows())

    def chunks(skip: int):
        batch, notes = [], []
        for index, (number, row) in enumerate(rows()):
            if index < skip:
                continue
            if len(row) == width:
                batch.append(row)
                notes.append(None)
            else:
                batch.append([None] * width)
                notes.append(f"line {number}: {len(row)} fields instead of {width}")
            if len(batch) == chunk_rows:
                yield _rows_frame(batch, notes, columns)
                batch, notes = [], []
        if batch:
            yield _rows_frame(batch, notes, columns)

    return TableStream(path, "tsv" if delimiter == "\t" else "csv", _unique_names(columns), count, chunk_rows, chunks)


def _rows_frame(batch: list[list], notes: list, columns: list[str]) -> pd.DataFrame:
    cells = [[v if v is not None and str(v).strip() else None for v in row] for row in batch]
    frame = pd.DataFrame(cells, columns=columns, dtype=object)
    if any(notes):
        frame[NOTE] = notes
    return frame
