"""Batch predictions: one output row per input row, in order, by the classifier in use of a run or a bundle (the
candidate its evaluation chose, or the one picked), the run's threshold applied, in chunks written as they are made
(files of any size, a kill loses nothing: ``studio.data.output``; several processes share the chunks under
``accelerate launch``)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.classifier.bundle import open_source
from studio.classifier.engine import RunClassifier
from studio.data.output import ChunkedOutput
from studio.data.stream import NOTE, fingerprint, open_table
from studio.data.table import detect_text_column, resolve_column
from studio.errors import StudioError
from studio.evaluate.metrics import set_metrics
from studio.machine import join_process_group, ranks, wait_for_all_ranks
from studio.runs.folder import RunDir
from studio.runs.jobs import refuse_while_training

CHUNK_ROWS = 256  # rows classified and written at a time: what a kill can cost, at most
PREVIEW_ROWS = 50


@dataclass
class PredictionRun:
    """What a batch prediction wrote (in a sharded run: this process's share, and the file once all are done)."""

    output: Path
    rows: int  # rows in the input: the output has one per input row
    resumed_from: int  # input rows a partial output already held when this call started
    counts: dict[str, int]  # predicted labels of the rows classified by this call
    seconds: float
    preview: pd.DataFrame  # the first rows this call classified
    classified: int = 0  # rows this call (this process) classified
    test: dict | None = None  # a labelled file's figures as a test set (``test_figures``), from these predictions

    @property
    def rows_per_second(self) -> float:
        return self.classified / max(self.seconds, 1e-9)


def test_figures(output: Path, column: str, labels: list[str], minority: str | None) -> dict | None:
    """A file with the run's label column is a test set: the classifier in use's figures on it, read from the
    predictions just written (each text scored once). Rows whose label is empty or one the run does not know are
    left out and counted; None when the column is missing or holds none of the run's labels."""
    table = open_table(output)
    if column not in table.columns:
        return None
    truth, predicted, unknown = [], [], 0
    for chunk in table.chunks():
        given = chunk[column].astype("string").str.strip()
        for label, guess in zip(given, chunk["predicted_label"]):
            if pd.isna(label) or not label or pd.isna(guess):
                continue
            if label in labels:
                truth.append(label)
                predicted.append(str(guess))
            else:
                unknown += 1
    if not truth:
        return None
    figures = set_metrics(truth, predicted, labels, minority)
    return {"column": column, "unknown_labels": unknown, **{k: figures[k] for k in (
        "n", "accuracy", "macro_f1", "minority_label", "minority_recall", "per_class", "confusion_matrix")}}


def predict_file(run_dir: str | Path, file: str | Path, out: str | Path, runs_dir: str | Path = "runs", *,
                 text_column: str | None = None, use: str | None = None, loaded=None, log=print, progress=None,
                 restart: bool = False, chunk_rows: int = CHUNK_ROWS) -> PredictionRun:
    """Classify every row of a file (labels not needed) with the classifier in use of a run or a bundle (``use``:
    another candidate), chunk by chunk in constant memory; the input columns and the predictions go to ``out``
    (.csv, .tsv, .jsonl or .parquet) through a partial folder that a rerun continues (``restart``: start over).
    Under ``accelerate launch`` every process classifies its share of the chunks, and rank 0 joins the file.
    ``progress(message, fraction)``."""
    source = open_source(run_dir, runs_dir)
    me = ranks()
    if me.distributed:
        join_process_group()
    output, table, classifier, column = _prepared(source, file, out, text_column, use, loaded, restart, chunk_rows,
                                                  me, log)
    chunks = -(-table.rows // output.chunk_rows)
    done = output.done
    mine = [c for c in range(chunks) if c % me.world_size == me.rank]
    resumed = sum(_rows_in(c, table.rows, output.chunk_rows) for c in done)
    if done and me.main:
        log(f"Continuing {output.folder.name}: {resumed:,} of {table.rows:,} rows were done.")
    counts: Counter = Counter()
    classified, started, preview = 0, time.perf_counter(), []
    for number, chunk in enumerate(table.chunks()):
        if number not in mine or number in done:
            continue
        result = _classified(chunk, column, classifier)
        output.write(number, result)
        classified += len(chunk)
        counts.update(result["predicted_label"].dropna())
        if sum(len(p) for p in preview) < PREVIEW_ROWS:
            preview.append(result.head(PREVIEW_ROWS))
        if progress:
            seconds = time.perf_counter() - started
            finished = resumed + classified * me.world_size
            progress(_progress_words(min(finished, table.rows), table.rows, classified * me.world_size / seconds),
                     min(finished, table.rows) / max(1, table.rows))
    seconds = time.perf_counter() - started
    wait_for_all_ranks()
    path = output.finish(chunks) if me.main else output.path
    wait_for_all_ranks()
    label = _label_column(source, table.columns, column)
    return PredictionRun(path, table.rows, resumed, dict(counts), seconds,
                         pd.concat(preview, ignore_index=True).head(PREVIEW_ROWS) if preview else pd.DataFrame(),
                         classified, test_figures(path, label, classifier.labels, source.minority_label())
                         if me.main and label else None)


def _prepared(source, file, out, text_column, use, loaded, restart, chunk_rows, me, log):
    """The output folder (set up by rank 0, joined by the others), the input stream, the classifier, the column."""
    classifier = RunClassifier.of_run(source, use, loaded=loaded, log=log)
    if isinstance(source, RunDir) and classifier.needs_llm:  # a first classifier answers while the LLM trains
        refuse_while_training(source, "use it to predict")
    table = open_table(file, chunk_rows)
    column = _text_column(source, table, text_column, Path(file).name)
    numbers = {"confidence", *(f"p_{lb}" for lb in classifier.labels)}
    settings = {"input": fingerprint(file), "text_column": column, "classifier": _identity(source, classifier)}
    output = None
    if me.main:
        output = ChunkedOutput(out, settings, chunk_rows, restart=restart, numbers=numbers)
    wait_for_all_ranks()
    if not me.main:
        output = ChunkedOutput(out, settings, chunk_rows, numbers=numbers, create=False)
    if output.chunk_rows != chunk_rows:  # a resume keeps the chunk size the partial output was started with
        table = open_table(file, output.chunk_rows)
    return output, table, classifier, column


def _rows_in(chunk: int, rows: int, chunk_rows: int) -> int:
    return max(0, min(chunk_rows, rows - chunk * chunk_rows))


def _text_column(source, table, asked: str | None, name: str) -> str:
    """The column to classify: as asked, else the run's text column when the file has it, else detected."""
    column = resolve_column(asked, table.columns, name, "text", "--text-col")
    if column:
        return column
    trained = source.config().data.text_column if isinstance(source, RunDir) else \
        source.record.get("text_column", "")
    if trained in table.columns:
        return trained
    first = next(table.chunks(), None)
    if first is None or first.empty:
        raise StudioError(f"{name} has no rows to classify.")
    return detect_text_column(first.drop(columns=[NOTE], errors="ignore"))


def _label_column(source, columns: list[str], text_column: str) -> str | None:
    """The run's label column where the file has it (a labelled file: a test set), else None."""
    trained = source.config().data.label_column if isinstance(source, RunDir) else \
        source.record.get("label_column", "")
    return trained if trained and trained in columns and trained != text_column else None


def _classified(chunk: pd.DataFrame, column: str, classifier: RunClassifier) -> pd.DataFrame:
    """The chunk's columns and the predictions; a row the reader could not read whole keeps its note."""
    notes = chunk.pop(NOTE) if NOTE in chunk else None
    predictions = classifier.predict_frame(list(chunk[column]))
    if notes is not None:
        predictions["note"] = [n if n else p for n, p in zip(notes, predictions["note"])]
    return pd.concat([chunk.reset_index(drop=True), predictions], axis=1)


def _identity(source, classifier: RunClassifier) -> str:
    """What the predictions depend on: the source, its adapter's weights, the rule in use."""
    weights = source.adapter / "adapter_model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.exists() else 0
    rule = json.dumps(classifier.rule.to_dict(), sort_keys=True)
    return hashlib.sha256(f"{Path(source.path).resolve()}|{stamp}|{rule}".encode()).hexdigest()[:16]


def _progress_words(done: int, total: int, rate: float) -> str:
    left = (total - done) / rate if rate else 0
    return (f"Classified {done:,} of {total:,} rows ({100 * done / max(1, total):.0f}%), {rate:,.1f} rows/s, "
            f"about {_duration(left)} left")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
