"""Check a data file: read and validate it, choose the label codes (with the model's tokenizer when it can be had),
split and balance it, and say how hard it is for a classic model; keep an upload beside the runs."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from studio.config import RunConfig
from studio.data.prepare import PreparedData, keep_upload, prepare_data
from studio.data.readers import read_table
from studio.data.table import columns_of, file_columns as read_columns, validate_table
from studio.door.result import Result, escape_markdown, md_list
from studio.errors import StudioError

LISTED_CLASSES = 12  # classes named one by one in the summary; past it, counted
_tokenizers: dict[str, object] = {}  # model name → tokenizer: a page checks the data again and again


def tokenizer_for(model_name: str, log: Callable[[str], None] = print):
    """(tokenizer, None), or (None, why not) when it cannot be had (an offline hub id): the check goes on without
    token counts."""
    from studio.models.loading import load_tokenizer  # (transformers: not at the page's start)

    if model_name not in _tokenizers:
        try:
            _tokenizers[model_name] = load_tokenizer(model_name, log=log)
        except StudioError as err:
            return None, f"Token counts skipped: {err}"
    return _tokenizers[model_name], None


def with_clock(work: Callable, progress: Callable[[str, float], None], message: str, start: float, end: float,
               expected_s: float):
    """``work()``, which cannot report its own progress, with the bar moving from ``start`` towards ``end`` as the
    seconds pass (most of the way at ``expected_s``, never reaching ``end``) and the seconds in the message."""
    done = threading.Event()
    began = time.monotonic()

    def tick() -> None:
        while not done.wait(1.0):
            elapsed = time.monotonic() - began
            progress(f"{message}: {elapsed:.0f} s", start + (end - start) * (1 - math.exp(-elapsed / expected_s)))

    progress(message, start)
    clock = threading.Thread(target=tick, name="progress-clock", daemon=True)
    clock.start()
    try:
        return work()
    finally:
        done.set()
        clock.join()


@dataclass
class DataFacts:
    """What planning needs from the last data check: the training rows, their token counts and classes."""

    rows: int
    lengths: list[int] | None
    classes: list[int]
    class_counts: dict[str, int]
    model: str | None  # the tokenizer the lengths were counted with
    max_seq_length: int

    def lengths_for(self, model_name: str, max_seq_length: int) -> list[int] | None:
        """The lengths, when they still hold: same model, max_seq_length not raised (rows cut at the old limit could
        be longer now)."""
        if not self.lengths or model_name != self.model or max_seq_length > self.max_seq_length:
            return None
        return self.lengths


@dataclass
class DataCheck(Result):
    path: str
    prepared: PreparedData
    model: str | None = None
    note: str | None = None  # why the token counts are missing
    difficulty: dict | None = None  # the classic model's cross-validated macro-F1
    max_seq_length: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """``inspect --json``: rows, columns, classes, dropped rows, conflicts, warnings, codes, split counts."""
        summary = self.prepared.table.summary()
        summary.update(warnings=self.prepared.warnings, codes=self.prepared.codes, split=self.prepared.counts(),
                       out_of_scope=self.prepared.out_of_scope, unsure=self.prepared.unsure)
        return summary

    def counts(self) -> dict:
        return self.prepared.counts()

    def code_rows(self) -> list[list]:
        """The label-code table: label, code, tokens, warnings."""
        return [[r["label"], r["code"], r["tokens"] if r["tokens"] is not None else "", "; ".join(r["warnings"])]
                for r in self.prepared.code_rows]

    def preview(self, rows: int = 20) -> pd.DataFrame:
        return self.prepared.table.source.frame.head(rows)

    @property
    def facts(self) -> DataFacts:
        p = self.prepared
        return DataFacts(len(p.train), p.train_lengths or None, p.train_classes(), p.counts()["input"], self.model,
                         self.max_seq_length)

    def lines(self) -> list[str]:
        """What ``inspect`` prints."""
        s = self.summary()
        how = [s["format"]] + [x for x in (s["encoding"], s["delimiter"] and f"{s['delimiter']}-separated") if x]
        if s["header"] is not None:
            how.append("header row" if s["header"] else "no header row")
        lines = [f"File: {self.path} ({', '.join(how)})", f"Rows: {s['rows']} usable of {s['input_rows']}",
                 f"Text column: {s['text_column']}    Label column: {s['label_column']}", "Classes:"]
        width = max(len(k) for k in s["classes"])
        total = sum(s["classes"].values())
        for label, n in s["classes"].items():
            lines.append(f"  {label:<{width}}  {n:>6}  ({100 * n / total:.1f}%)  code {s['codes'][label]}")
        split = s["split"]
        lines.append("Split (train before → after balancing | Val A natural | Val B balanced):")
        for label in s["classes"]:
            lines.append(f"  {label:<{width}}  {split['train_before'][label]:>6} → {split['train_after'][label]:<6}"
                         f" | {split['val_a'][label]:>5} | {split['val_b'][label]:>5}")
        lines += _dropped_lines(s["dropped"]) + _conflict_lines(s["conflicts"])
        if s["warnings"]:
            lines.append("Warnings:")
            lines.extend(f"  - {w}" for w in s["warnings"])
        return lines

    def markdown(self) -> str:
        """The Data tab's summary."""
        s, p, md = self.summary(), self.prepared, escape_markdown
        lines = [f"**{s['rows']}** usable rows of {s['input_rows']} · text column **{md(s['text_column'])}** · label "
                 f"column **{md(s['label_column'])}** · {s['format']}, {s['encoding'] or ''} "
                 f"{'header row' if s['header'] else 'no header row'}",
                 _classes_line(s["classes"], s.get("out_of_scope"), p.unsure),
                 f"Training rows after balancing: **{len(p.train)}** · Val A {len(p.split.val_a)} · "
                 f"Val B {len(p.split.val_b)}"]
        if s["dropped"]:
            lines.append("Dropped: " + "; ".join(f"{d['count']} × {d['reason']} (rows "
                                                  f"{', '.join(map(str, d['rows'][:8]))})" for d in s["dropped"]))
        if self.note:
            lines.append(f"_{md(self.note)}_")
        text = "\n\n".join(lines) + ("\n\n**Warnings**\n" + md_list(p.warnings) if p.warnings else "")
        return text + self.difficulty_markdown()

    def difficulty_markdown(self) -> str:
        d = self.difficulty
        if not d:
            return ""
        took = "under a second" if d["seconds"] < 1 else f"{d['seconds']:.0f} s"
        return (f"\n\n**How hard is this data?** A classic model (TF-IDF + logistic regression) reaches macro-F1 "
                f"**{d['macro_f1']:.3f}** on it ({d['folds']}-fold cross-validation, {took}). The fine-tuned model is "
                "worth its training when it beats that; the Evaluate tab shows both.")


def _classes_line(classes: dict[str, int], out_of_scope: str | None, unsure: float | None = None) -> str:
    """The classes in a line: each with its rows, or for many of them their number and spread (the code table below
    lists, sorts and searches them all); what answers when no class is likely enough."""
    md = escape_markdown
    scope = f" · out-of-scope class **{md(out_of_scope)}** (a reject rule is fitted for it)" if out_of_scope else \
        f" · 'unsure' allowed: answered texts kept right {unsure:.0%} of the time" if unsure else ""
    if len(classes) <= LISTED_CLASSES:
        return "Classes: " + ", ".join(f"**{md(k)}** {v}" for k, v in classes.items()) + scope
    counts = sorted(classes.values())
    rarest = min(classes, key=classes.get)
    return (f"**{len(classes)} classes**, {counts[0]}–{counts[-1]} rows each (median {counts[len(counts) // 2]}; "
            f"rarest **{md(rarest)}**); all of them in the code table below, searchable{scope}")


def _dropped_lines(dropped: list[dict]) -> list[str]:
    if not dropped:
        return ["Dropped rows: none"]
    lines = ["Dropped rows:"]
    for d in dropped:
        rows = ", ".join(map(str, d["rows"])) + (" …" if d["count"] > len(d["rows"]) else "")
        lines.append(f"  {d['count']:>5}  {d['reason']} (rows {rows})")
    return lines


def _conflict_lines(conflicts: list[dict]) -> list[str]:
    if not conflicts:
        return []
    lines = ["Conflicting duplicates (same text, different labels):"]
    for c in conflicts[:10]:
        text = c["text"] if len(c["text"]) <= 70 else c["text"][:67] + "..."
        lines.append(f"  rows {c['rows']}: {text!r} → {c['labels']}")
    return lines


def check_data(config: RunConfig, model: str | None = None, *, difficulty: bool = False,
               progress: Callable[[str, float], None] | None = None, log: Callable[[str], None] = print) -> DataCheck:
    """The data side of ``config`` end to end. ``model``: count tokens and choose the codes with this model's tokenizer
    (None: letters as codes, no token counts); ``difficulty``: a classic model's cross-validated macro-F1."""
    progress = progress or (lambda message, fraction: None)
    if not config.data.path:
        raise StudioError("No data file is in use: upload a file, or click 'Use the sample data'.")
    tokenizer = note = None
    if model:
        from studio.models.loading import needs_conversion  # (transformers: not at the page's start)

        if model not in _tokenizers and needs_conversion(model):  # a single call of ~40 s: the bar moves by the clock
            tokenizer, note = with_clock(lambda: tokenizer_for(model, log), progress, "Converting the embedded model "
                                         "(once on this machine, about 40 seconds)", 0.05, 0.4, expected_s=40)
        else:
            progress(f"Loading the tokenizer of {model}", 0.1)
            tokenizer, note = tokenizer_for(model, log)
    progress("Reading, checking and splitting the rows", 0.4)
    prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length if tokenizer else None)
    check = DataCheck(config.data.path, prepared, model if tokenizer else None, note,
                      max_seq_length=config.model.max_seq_length)
    if difficulty:
        progress("A classic model on the rows: how hard is this data?", 0.7)
        check.difficulty = how_hard(prepared, config.data.split_seed)
    return check


def how_hard(prepared: PreparedData, seed: int = 3407) -> dict | None:
    """A classic model's cross-validated macro-F1, in seconds, before any training (None: too few rows a class)."""
    from studio.evaluate import baselines  # (scikit-learn: not at the page's start)

    try:
        return baselines.difficulty(prepared.table.frame, prepared.labels, folds=3, seed=seed)
    except ValueError:
        return None


@dataclass
class Upload:
    path: str  # the kept copy beside the runs
    name: str
    columns: list[str]
    text_column: str | None
    label_column: str | None
    problem: str = ""  # why the rows cannot be used as they are: the file is kept, the columns or limits can change


def use_upload(file: str | Path, runs_dir: str | Path, max_mb: float) -> Upload:
    """A readable uploaded file kept beside the runs (its temporary copy goes away), with its columns and what the
    data check says about its rows; an unreadable file raises."""
    name = Path(file).name
    source = read_table(file, max_mb=max_mb)  # read once: the columns, then the rows judged
    columns, text_column, label_column = columns_of(source, name)
    kept = keep_upload(file, runs_dir)
    try:
        validate_table(source, name=name)
        problem = ""
    except StudioError as err:
        problem = str(err)
    return Upload(str(kept), name, columns, text_column, label_column, problem)


def file_columns(path: str | Path, max_mb: float) -> tuple[list[str], str | None, str | None]:
    """The file's columns and the detected text and label columns (nothing when it cannot be read)."""
    try:
        return read_columns(path, max_mb=max_mb)
    except StudioError:
        return [], None, None
