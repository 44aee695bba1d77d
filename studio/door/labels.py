"""Label sanity over a whole file: every row's class probabilities from models that never saw it (a classic model in
5 folds; optionally K LLMs, each fine-tuned on the other folds with a run's settings and scoring its own rows),
ranked by cleanlab; then the review: keep / relabel / drop each suspect, saved beside the file as it is made, a
cleaned copy in the file's own format, and a new run on it.

The LLM folds are kept on disk as each finishes, so a stop (Ctrl-C, the Stop button) loses nothing done and the same
call continues."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from studio.config import RunConfig
from studio.data.edits import Decision, cleaned_copy, edits_table, load_decisions, save_decision
from studio.data.prepare import DELIMITER_ALIASES, HEADER_CHOICES, PreparedData, file_sha256, keep_upload
from studio.door.data import check_data
from studio.door.result import Result
from studio.door.training import start, train_here
from studio.errors import StudioError
from studio.machine import cache_dir

TEXT_PREVIEW = 70


@dataclass
class LabelIssuesFound(Result):
    result: object  # studio.evaluate.label_issues.LabelIssues
    data: str  # the file reviewed (decisions are saved beside it)
    label_column: str
    labels: list[str]
    header: str = "auto"
    delimiter: str = ""

    def to_dict(self, limit: int | None = None) -> dict:
        return self.result.to_dict(limit=limit)

    def summary(self) -> dict:
        return self.result.to_dict(limit=1)["summary"]

    def lines(self, limit: int = 20) -> list[str]:
        s = self.summary()
        out = [f"{s['issues_found']} likely label issues in {s['rows_checked']} rows ({' + '.join(s['sources'])}, "
               f"{s['minutes']} min); most likely first:"]
        for issue in self.result.table.head(limit).itertuples():
            text = issue.text if len(issue.text) <= TEXT_PREVIEW else issue.text[:TEXT_PREVIEW - 3] + "..."
            twin = " (conflicting duplicate)" if issue.source == "conflicting duplicate" else ""
            out.append(f"  row {issue.row:>6}  {issue.score:.2f}  given {issue.label!r}, suggested "
                       f"{issue.suggested!r}{twin}: {text!r}")
        return out

    def markdown(self) -> str:
        s = self.summary()
        return (f"**{s['issues_found']}** likely label issues in {s['rows_checked']} rows ({' + '.join(s['sources'])},"
                f" {s['minutes'] * 60:.0f} s). Decisions are saved beside the file as you make them.")

    def review_state(self) -> dict:
        """What the review needs between clicks (a page keeps it): the file, its columns, the suspects."""
        return {"data": self.data, "label_column": self.label_column, "labels": self.labels, "header": self.header,
                "delimiter": self.delimiter, "issues": self.result.table.to_dict("records")}


def config_for_file(file: str | Path, base: RunConfig | None = None) -> RunConfig:
    """A config for checking ``file``: a run's settings (or the defaults), with this file's columns detected."""
    config = RunConfig() if base is None else base
    config = config.replace({"data": {"path": str(file), "text_column": "", "label_column": "", "label_codes": {},
                                      "counts": {}, "sha256": ""}})
    return config


def find_label_issues(config: RunConfig, llm_folds: int = 0, *, stop: threading.Event | None = None,
                      log: Callable[[str], None] = print, progress: Callable[[str, float], None] | None = None,
                      started: float | None = None) -> LabelIssuesFound | None:
    """Rank the likely label errors of ``config``'s data file; None when stopped before the LLM folds finished
    (the finished ones are kept)."""
    from studio.evaluate import label_issues  # (scikit-learn and cleanlab: not at the page's start)

    started = started or time.perf_counter()
    say = progress or (lambda message, fraction: None)
    say("Reading and checking the data", 0.02)
    checked = check_data(copy.deepcopy(config), config.model.name if llm_folds else None, log=log)
    llm = None
    if llm_folds:
        llm = llm_out_of_fold(checked.prepared, config, llm_folds, workdir_for(config.data.path, config), log=log,
                              progress=progress, stop=stop)
        if llm is None:
            return None
    first = 0.95 if llm_folds else 0.1  # the LLM folds' share of the bar, when there are any

    def fold_done(done: int, k: int) -> None:
        say(f"Classic model: fold {done} of {k} over {len(checked.prepared.table.frame):,} rows done",
            first + (0.99 - first) * done / k)

    say(f"Classic model: fitting fold 1 of {label_issues.CLASSIC_FOLDS} over every row", first)
    result = label_issues.find(checked.prepared, llm_probs=llm, started=started, fold_done=fold_done)
    return LabelIssuesFound(result, config.data.path, checked.prepared.table.label_column, checked.prepared.labels,
                            config.data.header, config.data.delimiter)


def llm_out_of_fold(prepared: PreparedData, config: RunConfig, k: int, workdir: Path, *,
                    log: Callable[[str], None] = print, progress: Callable[[str, float], None] | None = None,
                    stop: threading.Event | None = None) -> np.ndarray | None:
    """Every row's class probabilities from an LLM fine-tuned (with ``config``'s settings) on the other folds.
    Finished folds are kept in ``workdir`` and reused; returns None when stopped before every fold finished."""
    from studio.evaluate.label_issues import fold_ids  # (scikit-learn: not at the page's start)

    if k < 2:
        raise StudioError("--llm-folds needs at least 2 folds (each fold's model learns from the others).")
    frame = prepared.table.frame
    folds = fold_ids(frame, k, config.data.split_seed)
    workdir.mkdir(parents=True, exist_ok=True)
    out = np.full((len(frame), len(prepared.labels)), np.nan)
    for fold in range(k):
        done, held = workdir / f"fold-{fold}.npy", np.flatnonzero(folds == fold)
        if done.exists():
            out[held] = np.load(done)
            log(f"Fold {fold + 1} of {k}: kept from an earlier run.")
            continue
        if stop is not None and stop.is_set():
            return None
        probs = _one_fold(prepared, config, folds, fold, k, workdir, progress, stop)
        if probs is None:
            return None
        np.save(done, probs)
        out[held] = probs
        log(f"Fold {fold + 1} of {k}: done ({len(held)} rows scored).")
    return out


def _one_fold(prepared, config, folds, fold: int, k: int, workdir: Path, progress, stop) -> np.ndarray | None:
    """Train fold ``fold``'s model on the other folds (the training verb's run in this process) and score its
    held-out rows through the fold run's classifier, as ``predict`` would (None: stopped)."""
    from studio.classifier.engine import RunClassifier  # (torch: only to train)

    frame, held = prepared.table.frame, np.flatnonzero(folds == fold)
    train_file = workdir / f"fold-{fold}-train.csv"
    frame.iloc[np.flatnonzero(folds != fold)][["text", "label"]].to_csv(train_file, index=False)
    fold_config = config.replace({"name": f"fold-{fold + 1}-of-{k}", "data": {
        "path": str(train_file), "text_column": "text", "label_column": "label", "sha256": "", "counts": {},
        "label_codes": dict(prepared.codes), "rubric": prepared.rubric}})
    say = progress or (lambda message, fraction: None)
    say(f"LLM fold {fold + 1} of {k}: training on {len(frame) - len(held)} rows", fold / k)
    job = train_here(fold_config, workdir / "runs")
    while not job.wait(1.0):
        if stop is not None and stop.is_set():
            job.stop()
        snap = job.snapshot()
        share = snap["progress"] if snap["total_steps"] else 0.0
        say(f"LLM fold {fold + 1} of {k}: {snap['phase']}, step {snap['step']}/{snap['total_steps'] or '?'}",
            (fold + 0.8 * share) / k)
    if job.state != "finished" or job.model is None:
        if stop is not None and stop.is_set():
            return None
        raise StudioError(f"LLM fold {fold + 1} of {k} did not finish ({job.state}): {job.error}")
    say(f"LLM fold {fold + 1} of {k}: scoring its {len(held)} held-out rows", (fold + 0.8) / k)
    classifier = RunClassifier.of_run(job.run, loaded=(job.model, job.tokenizer, job.run.adapter_card()))
    return classifier.classify(list(frame["text"].iloc[held])).probs


def workdir_for(data_path: str, config: RunConfig) -> Path:
    """Where a file's LLM folds are kept: beside the studio's cache, keyed by the file's content and the settings."""
    key = hashlib.sha256((file_sha256(data_path) + json.dumps(config.to_dict(), sort_keys=True, default=str))
                         .encode()).hexdigest()[:16]
    return cache_dir() / "label-issues" / key


# ---- the review -----------------------------------------------------------------------------------------------
def reviewable(path: str | Path, runs_dir: str | Path) -> Path:
    """The file whose labels are reviewed: an upload already kept beside the runs, else a kept copy (of the sample,
    say): decisions are written beside it, never into the studio's own assets."""
    path = Path(path)
    if path.resolve().parent == (Path(runs_dir) / ".uploads").resolve():
        return path
    return keep_upload(path, runs_dir)


def decide(state: dict, row: int | None, action: str, new_label: str | None) -> dict[int, Decision]:
    """Keep, relabel or drop one suspect of a review (``review_state``); saved beside the file at once."""
    if not state:
        raise StudioError("Find the label issues first.")
    issue = next((i for i in state["issues"] if int(i["row"]) == int(row if row is not None else -1)), None)
    if issue is None:
        raise StudioError(f"Row {row} is not among the suspects: click one in the table.")
    return save_decision(state["data"], Decision(int(issue["row"]), action, issue["label"],
                                                 new_label if action == "relabel" else None, issue["text"]),
                         state["labels"])


def decisions(state: dict) -> dict[int, Decision]:
    return load_decisions(state["data"])


def decisions_line(state: dict) -> str:
    made = decisions(state)
    if not made:
        return "_No decisions yet: click a suspect, choose keep / relabel / drop, and save._"
    counts = {a: sum(1 for d in made.values() if d.action == a) for a in ("relabel", "drop", "keep")}
    n = len(made)
    return (f"**{n}** decision{'s' if n != 1 else ''} saved: {counts['relabel']} relabelled, {counts['drop']} "
            f"dropped, {counts['keep']} kept as they are.")


def cleaned_file(state: dict, runs_dir: str | Path, max_mb: float) -> tuple[Path, Path, dict[int, Decision]]:
    """(cleaned file in its own format, a CSV of the edits, the decisions), kept beside the runs' uploads."""
    if not state:
        raise StudioError("Find the label issues and make some decisions first.")
    header = HEADER_CHOICES.get(state.get("header") or "auto")
    delimiter = state.get("delimiter") or ""
    return cleaned_copy(state["data"], state["label_column"], Path(runs_dir) / ".uploads", header=header,
                        delimiter=DELIMITER_ALIASES.get(delimiter.lower(), delimiter) or None, max_mb=max_mb)


def retrain_on_cleaned(config: RunConfig, state: dict, runs_dir: str | Path, max_mb: float):
    """A new run on the cleaned file, whose record keeps the source file, its hash and every edit."""

    target, _, made = cleaned_file(state, runs_dir, max_mb)
    config = config.replace({"data": {"path": str(target), "edits": {
        "source": state["data"], "source_sha256": file_sha256(state["data"]),
        "edits": edits_table(made).to_dict("records")}}})
    return start(config, runs_dir)
