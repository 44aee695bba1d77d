"""Label fixes made while reviewing suspects: kept beside the data file as they are made (a reload loses nothing),
applied to the file as it was read, and written back in the same format (a cleaned copy) with a CSV of the edits.

A decision is keyed by the row's number in the file (its line, as ``inspect`` reports it): keep (the label is right),
relabel (to another label), or drop (remove the row).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.data.prepare import original_name
from studio.data.readers import ReadResult, read_table
from studio.errors import StudioError
from studio.files import write_json_atomic, written_atomically
from studio.runs.sheets import write_csv

ACTIONS = ("keep", "relabel", "drop")


@dataclass
class Decision:
    row: int
    action: str
    label: str  # the label as given in the file
    new_label: str | None = None  # for relabel
    text: str = ""


def decisions_path(data_path: str | Path) -> Path:
    path = Path(data_path)
    return path.with_name(path.name + ".labels.json")


def load_decisions(data_path: str | Path) -> dict[int, Decision]:
    path = decisions_path(data_path)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StudioError(f"The saved review decisions in {path} cannot be read ({exc}); move the file away to "
                          "start the review again.") from None
    return {int(d["row"]): Decision(**d) for d in raw.get("decisions", [])}


def save_decision(data_path: str | Path, decision: Decision, labels: list[str]) -> dict[int, Decision]:
    """Record one decision (replacing an earlier one for the same row), written at once."""
    if decision.action not in ACTIONS:
        raise StudioError(f"A decision is one of {', '.join(ACTIONS)} (got '{decision.action}').")
    if decision.action == "relabel":
        if decision.new_label not in labels:
            raise StudioError(f"Relabel to one of the file's labels: {', '.join(map(repr, labels))} "
                              f"(got {decision.new_label!r}).")
        if decision.new_label == decision.label:
            decision = Decision(decision.row, "keep", decision.label, None, decision.text)
    else:
        decision.new_label = None
    decisions = load_decisions(data_path)
    decisions[decision.row] = decision
    _write(data_path, decisions)
    return decisions


def _write(data_path, decisions: dict[int, Decision]) -> None:
    write_json_atomic(decisions_path(data_path), {"data": str(data_path), "decisions": [
        vars(d) for d in sorted(decisions.values(), key=lambda d: d.row)]}, indent=1)


def edits_table(decisions: dict[int, Decision]) -> pd.DataFrame:
    """The relabels and drops (keeps change nothing), as the CSV that goes with a cleaned file."""
    rows = [{"row": d.row, "action": d.action, "label": d.label, "new_label": d.new_label, "text": d.text}
            for d in sorted(decisions.values(), key=lambda d: d.row) if d.action != "keep"]
    return pd.DataFrame(rows, columns=["row", "action", "label", "new_label", "text"])


def apply_decisions(source: ReadResult, label_column: str, decisions: dict[int, Decision]) -> pd.DataFrame:
    """The file's table as read, with the relabels and drops applied (rows keep their order and every column)."""
    frame = source.frame.copy()
    rows = source.source_rows or list(range(1, len(frame) + 1))
    index = {row: i for i, row in enumerate(rows)}
    drop = []
    for d in decisions.values():
        if d.row not in index:
            raise StudioError(f"Row {d.row} is not in the file any more (was it edited?): clear that decision.")
        i = index[d.row]
        if d.action == "relabel":
            frame.iat[i, frame.columns.get_loc(label_column)] = d.new_label
        elif d.action == "drop":
            drop.append(i)
    return frame.drop(index=frame.index[drop]).reset_index(drop=True)


def write_like(source: ReadResult, frame: pd.DataFrame, out: str | Path) -> Path:
    """Write ``frame`` in the format the source was read in (delimiter and header row for text files), to a temporary
    name first."""
    out = Path(out)
    fmt = source.format
    with written_atomically(out) as tmp:
        if fmt in ("csv", "tsv"):
            frame.to_csv(tmp, sep=source.delimiter or ("\t" if fmt == "tsv" else ","), index=False,
                         header=bool(source.header), encoding="utf-8")
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif fmt == "json":
            frame.to_json(tmp, orient="records", force_ascii=False, indent=1)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "excel":
            frame.to_excel(tmp, index=False, engine="openpyxl")
        else:
            raise StudioError(f"Cannot write a cleaned copy of a {fmt} file.")
    return out


def cleaned_copy(data_path: str | Path, label_column: str, out_dir: str | Path, *, header: bool | None = None,
                 delimiter: str | None = None, max_mb: float = 200.0) -> tuple[Path, Path, dict[int, Decision]]:
    """(cleaned file, edits CSV, decisions): the data file with its saved decisions applied, in its own format."""
    data_path = Path(data_path)
    decisions = load_decisions(data_path)
    source = read_table(data_path, max_mb=max_mb, header=header, delimiter=delimiter)
    if label_column not in source.frame.columns:
        raise StudioError(f"The label column '{label_column}' is not in {data_path.name}.")
    cleaned = apply_decisions(source, label_column, decisions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = original_name(data_path)  # "posts.csv", not the kept upload's "3f2a…-posts.csv"
    stem = name[:-len(data_path.suffix)] if data_path.suffix else name
    target = write_like(source, cleaned, out_dir / f"{stem}-cleaned{data_path.suffix or '.csv'}")
    edits = write_csv(edits_table(decisions), out_dir / f"{stem}-label-edits.csv")
    return target, edits, decisions
