"""File → DataFrame of strings: formats, encodings, delimiters and header rows, with errors a user can act on.

Every cell comes back as ``str`` or ``None`` (missing): "NA", "None" or "0" are real text or labels here,
so pandas' own NA guessing is switched off everywhere.
"""

from __future__ import annotations

import csv
import io
import json
import os
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from studio.errors import StudioError

DEFAULT_MAX_FILE_MB = 200
DELIMITERS = ["\t", ",", ";", "|"]
DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}
EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "delimited",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel",
}
# Column names that mark a first row as a header without any guessing.
HEADER_WORDS = {
    "text", "label", "labels", "class", "category", "target", "message", "post", "content", "body",
    "sentence", "review", "comment", "input", "output", "question", "sms", "tweet", "document", "tag",
    "intent", "sentiment", "y", "id", "title", "v1", "v2",
}
# A bad-line share above this is a broken file, not a few stray rows.
MAX_BAD_LINE_SHARE = 0.05
# A quoted field spanning more lines than this is almost always an unclosed quote.
SUSPICIOUS_FIELD_LINES = 10


@dataclass
class ReadResult:
    """A table read from disk plus how it was read (shown to the user, saved in the data recipe)."""

    frame: pd.DataFrame
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    # Source line (1-based, as an editor shows it) or record number of each row of ``frame``.
    source_rows: list[int] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_table(
    path: str | os.PathLike,
    *,
    max_mb: float = DEFAULT_MAX_FILE_MB,
    header: bool | None = None,
    delimiter: str | None = None,
) -> ReadResult:
    """Read any supported file into strings. ``header``/``delimiter`` None means detect."""
    path = Path(path)
    if not path.exists():
        raise StudioError(f"File not found: {path}. Check the path, or upload the file again.")
    if path.is_dir():
        raise StudioError(f"{path} is a folder; pick a data file (CSV, TSV, JSONL, JSON, Parquet or Excel).")
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_mb:
        raise StudioError(
            f"{path.name} is {size_mb:.0f} MB, over the {max_mb:g} MB limit. "
            "Use a sample of the file, or raise the limit (--max-upload-mb)."
        )
    raw = path.read_bytes()
    if not raw.strip():
        raise StudioError(f"{path.name} is empty: it has no rows to train on.")

    fmt = _detect_format(path, raw)
    if fmt == "parquet":
        return _from_frame(_read_binary(path, pd.read_parquet, "Parquet"), "parquet")
    if fmt == "excel":
        return _read_excel(path)

    text, encoding, warnings = decode_bytes(raw, path.name)
    if fmt == "json" or (fmt == "delimited" and text.lstrip().startswith("[")):
        result = _read_json(text, path.name)
    elif fmt == "jsonl" or (fmt == "delimited" and text.lstrip().startswith("{")):
        result = _read_jsonl(text, path.name)
    else:
        forced = "\t" if fmt == "tsv" else None  # .csv files are sniffed too: many use semicolons
        result = _read_delimited(text, path.name, delimiter=delimiter or forced, header=header)
    result.encoding = encoding
    result.warnings[:0] = warnings
    return result


def _detect_format(path: Path, raw: bytes) -> str:
    if raw[:4] == b"PAR1":
        return "parquet"
    if raw[:4] == b"PK\x03\x04" or raw[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "excel"
    return EXTENSIONS.get(path.suffix.lower(), "delimited")


def decode_bytes(raw: bytes, name: str) -> tuple[str, str, list[str]]:
    """Decode text: BOMs first, then UTF-16 without BOM, UTF-8, and a reported latin-1 family fallback."""
    warnings: list[str] = []
    if raw.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif len(raw) >= 4 and raw[1::2].count(0) > 0.4 * len(raw) / 2:
        encoding = "utf-16-le"
    elif len(raw) >= 4 and raw[0::2].count(0) > 0.4 * len(raw) / 2:
        encoding = "utf-16-be"
    else:
        encoding = "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        if encoding.startswith("utf-16"):
            raise StudioError(f"{name} looks like UTF-16 but does not decode; save it again as UTF-8.") from None
        if b"\x00" in raw:
            raise _binary_error(name) from None
        for encoding in ("cp1252", "latin-1"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        warnings.append(
            f"{name} is not valid UTF-8; read it as {encoding} (latin-1 family). "
            "Check accented characters in the preview; save the file as UTF-8 to be sure."
        )
    if "\x00" in text or _control_share(text) > 0.01:
        raise _binary_error(name)
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding, warnings


def _control_share(text: str) -> float:
    sample = text[:200_000]
    controls = sum(1 for ch in sample if ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cs", "Co"))
    return controls / max(1, len(sample))


def _binary_error(name: str) -> StudioError:
    return StudioError(
        f"{name} does not look like a text table (it contains binary data). "
        "Upload CSV, TSV, JSONL, JSON, Parquet or Excel."
    )


def _read_binary(path: Path, reader, kind: str) -> pd.DataFrame:
    try:
        return reader(path)
    except Exception as exc:  # the libraries' messages are not for end users
        raise StudioError(f"{path.name} could not be read as {kind} ({type(exc).__name__}: {exc}). "
                          "Is the file complete? Try exporting it again, or as CSV.") from None


def _read_excel(path: Path) -> ReadResult:
    try:
        sheets = pd.ExcelFile(path)
    except Exception as exc:
        raise StudioError(f"{path.name} could not be read as Excel ({exc}). Save it as .xlsx or CSV.") from None
    names = sheets.sheet_names
    # keep_default_na=False: a cell reading "NA" or "None" is text, not a missing value
    frame = _read_binary(path, lambda p: sheets.parse(names[0], dtype=object, keep_default_na=False,
                                                      na_values=[]), "Excel")
    result = _from_frame(frame, "excel")
    if len(names) > 1:
        result.warnings.append(f"Read the first sheet, '{names[0]}'; other sheets ignored: {', '.join(names[1:])}.")
    return result


def _from_frame(frame: pd.DataFrame, fmt: str, first_row: int = 2) -> ReadResult:
    """Normalise a library-read frame to str/None cells; row numbers as a spreadsheet shows them."""
    columns = _unique_names([str(c) for c in frame.columns])
    frame = pd.DataFrame({name: pd.Series([None if _missing(v) else _cell_str(v) for v in frame.iloc[:, i]],
                                          dtype=object) for i, name in enumerate(columns)})
    return ReadResult(frame=frame, format=fmt, header=True,
                      source_rows=list(range(first_row, first_row + len(frame))))


def _missing(value) -> bool:
    """None, NaN, NaT and pd.NA: pandas 3 turns None into NaN in many places."""
    if isinstance(value, (list, dict)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _cell_str(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 1 as 1.0; the label is "1"
    return str(value)


def _read_json(text: str, name: str) -> ReadResult:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StudioError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg}). "
                          "If it has one object per line, name it .jsonl.") from None
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
        if len(lists) != 1:
            raise StudioError(f"{name}: expected a list of records like "
                              '[{"text": "...", "label": "..."}, ...]; found an object with keys '
                              f"{', '.join(map(str, list(data)[:8]))}.")
        records = data[lists[0]]
        warning = f"Read the records under the key '{lists[0]}'."
    elif isinstance(data, list):
        records, warning = data, None
    else:
        raise StudioError(f'{name}: expected a list of records like [{{"text": "...", "label": "..."}}, ...].')
    bad = [(i + 1, "not an object") for i, r in enumerate(records) if not isinstance(r, dict)]
    good = [(i + 1, r) for i, r in enumerate(records) if isinstance(r, dict)]
    result = _records_result(good, bad, "json", name, "record")
    if warning:
        result.warnings.append(warning)
    return result


def _read_jsonl(text: str, name: str) -> ReadResult:
    good, bad = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((number, f"invalid JSON ({exc.msg})"))
            continue
        if isinstance(record, dict):
            good.append((number, record))
        else:
            bad.append((number, "not a JSON object"))
    return _records_result(good, bad, "jsonl", name, "line")


def _records_result(good, bad, fmt: str, name: str, unit: str) -> ReadResult:
    _check_bad_share(len(good), bad, name, unit)
    # Nested values (lists, dicts) become their JSON text rather than Python reprs.
    records = [{k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in r.items()}
               for _, r in good]
    result = _from_frame(pd.DataFrame(records, dtype=object), fmt)
    result.source_rows = [n for n, _ in good]
    result.bad_lines = bad
    return result


def _check_bad_share(good: int, bad: list[tuple[int, str]], name: str, unit: str) -> None:
    if not good:
        first = f" ({unit} {bad[0][0]}: {bad[0][1]})" if bad else ""
        raise StudioError(f"{name} has no readable rows{first}. Check the file's format.")
    if bad and len(bad) > MAX_BAD_LINE_SHARE * (good + len(bad)):
        examples = "; ".join(f"{unit} {n}: {why}" for n, why in bad[:3])
        raise StudioError(f"{name}: {len(bad)} of {good + len(bad)} {unit}s are malformed ({examples}). "
                          "Fix the file or export it again.")


def _read_delimited(text: str, name: str, *, delimiter: str | None, header: bool | None,
                    min_columns: int = 2) -> ReadResult:
    """``min_columns=1``: a file of texts alone (to classify) is a table too."""
    sample = text[:65536].rsplit("\n", 1)[0] if len(text) > 65536 else text
    delimiter = delimiter or _sniffed(sample, name, min_columns)
    quoting = _quoting_for(sample, delimiter)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting, strict=False)
    rows: list[tuple[int, list[str]]] = []
    warnings: list[str] = []
    start = 1
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                rows.append((start, row))
                span = reader.line_num - start + 1
                if span > SUSPICIOUS_FIELD_LINES:
                    warnings.append(f"The row starting on line {start} spans {span} lines: probably an unclosed "
                                    "quote (\") swallowed the rows after it. Check that line.")
            start = reader.line_num + 1
    except csv.Error:
        raise _unclosed_quote_error(name, start) from None
    if rows and quoting != csv.QUOTE_NONE and _ends_inside_quote(text, delimiter):
        raise _unclosed_quote_error(name, rows[-1][0])
    if not rows:
        raise StudioError(f"{name} is empty: it has no rows to train on.")

    width = Counter(len(r) for _, r in rows).most_common(1)[0][0]
    if width < min_columns:
        raise StudioError(f"{name} has a single column; a table needs a text column and a label column "
                          f"(separated by tab or comma).")
    if header is None:
        header = detect_header([r for _, r in rows[:500]], width)
    columns = [c.strip() or f"column_{i + 1}" for i, c in enumerate(rows[0][1])] if header else \
        [f"column_{i + 1}" for i in range(width)]
    columns = _unique_names(columns)
    data_rows = rows[1:] if header else rows
    good, bad = [], []
    for number, row in data_rows:
        if len(row) == width:
            good.append((number, row))
        elif len(row) > width and not header and width == 2:
            bad.append((number, f"{len(row)} fields instead of {width}"))
        else:
            bad.append((number, f"{len(row)} fields instead of {width} (a stray separator or quote)"))
    if header and len(columns) != width:
        raise StudioError(f"{name}: the header has {len(columns)} columns but most rows have {width}. "
                          "Fix the header line or the separators.")
    _check_bad_share(len(good), bad, name, "line")
    frame = pd.DataFrame([r for _, r in good], columns=columns, dtype=object)
    fmt = "tsv" if delimiter == "\t" else "csv"
    return ReadResult(frame=frame, format=fmt, delimiter=delimiter, header=header,
                      source_rows=[n for n, _ in good], bad_lines=bad, warnings=warnings)


def _sniffed(sample: str, name: str, min_columns: int) -> str:
    delimiter = sniff_delimiter(sample) or ("," if min_columns == 1 else None)
    if delimiter is None and not any(d in sample for d in DELIMITERS):
        raise StudioError(f"{name} has a single column (no tab, comma, semicolon or pipe found); a table needs a text "
                          "column and a label column.")
    if delimiter is None:
        raise StudioError(f"{name}: could not find a column separator (tab, comma, semicolon or pipe) with a "
                          "consistent number of columns. A table needs at least a text column and a label column.")
    return delimiter


def _unclosed_quote_error(name: str, line: int) -> StudioError:
    return StudioError(f"{name}: unbalanced quote: the quoted field starting on line {line} never closes. "
                       "Add the closing quote (\"), remove the stray one, or save the file as TSV or JSONL.")


def _ends_inside_quote(text: str, delimiter: str) -> bool:
    """True when the csv module silently reached the end of the file inside a quoted field."""
    probe = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        for _ in probe:
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def sniff_delimiter(sample: str) -> str | None:
    """The separator that splits the sample's rows into the most consistent number (≥2) of fields.
    Quote-aware first; then line by line, so that one unclosed quote is reported as such, not as 'no columns'."""
    return _sniff(sample, quote_aware=True) or _sniff(sample, quote_aware=False)


def _sniff(sample: str, quote_aware: bool) -> str | None:
    best, best_score = None, 0.0
    for delim in DELIMITERS:
        quoting = _quoting_for(sample, delim) if quote_aware else csv.QUOTE_NONE
        try:
            counts = [len(r) for r in csv.reader(io.StringIO(sample), delimiter=delim, quoting=quoting) if r]
        except csv.Error:
            continue
        if not counts:
            continue
        width, hits = Counter(counts).most_common(1)[0]
        if width < 2:
            continue
        score = hits / len(counts)
        if score > best_score + 1e-9:
            best, best_score = delim, score
    return best if best_score >= 0.8 else None


def _quoting_for(sample: str, delimiter: str) -> int:
    """Tabs: quotes are literal text (SMS-style files: `ham<TAB>"Hi" he said`) unless every field that starts
    with a quote is a properly quoted CSV-style field (closing quote, inner quotes doubled), as Excel writes."""
    if delimiter != "\t":
        return csv.QUOTE_MINIMAL
    starts = [f for line in sample.split("\n")[:500] for f in line.split("\t") if f.startswith('"')]
    proper = all(len(f) >= 2 and f.endswith('"') and '"' not in f[1:-1].replace('""', "") for f in starts)
    return csv.QUOTE_MINIMAL if starts and proper else csv.QUOTE_NONE


def detect_header(rows: list[list[str]], width: int) -> bool:
    """Is the first row a header? Known column names say yes; otherwise every cell must look like a name."""
    rows = [r for r in rows if len(r) == width]
    if len(rows) < 2:
        return False
    first, rest = rows[0], rows[1:]
    names = [c.strip().lower() for c in first]
    recurs = any(first[i].strip() in {r[i].strip() for r in rest} for i in range(width))
    if any(n in HEADER_WORDS for n in names) and len(set(names)) == len(names) and not recurs:
        return True
    differs = False
    for i, cell in enumerate(first):
        values = [r[i].strip() for r in rest]
        cell = cell.strip()
        if not cell or cell in values or len(cell) > 40 or len(cell.split()) > 4:
            return False
        mean_len = sum(map(len, values)) / len(values)
        numeric = sum(_is_number(v) for v in values) > 0.9 * len(values)
        if mean_len > 2 * len(cell) + 10 or (numeric and not _is_number(cell)):
            differs = True
    return differs


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _unique_names(names: list[str]) -> list[str]:
    seen: Counter = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out
