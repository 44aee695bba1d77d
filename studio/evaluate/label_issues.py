"""Label sanity over the whole file: every row gets out-of-sample class probabilities (cross-fitting: each row scored
by a model that never saw it), cleanlab's confident learning ranks the likely label errors, and the conflicting
duplicates the reader found come first.

Sources of probabilities:
- the classic model (TF-IDF + logistic regression), k folds: seconds;
- the LLM, when asked: K folds on a run's settings, each trained on the other rows (``start_training``, its own
  Val A for early stopping) and scoring its own rows; each finished fold is kept on disk, so a stop loses nothing done.

Combination and score (measured with planted flips: bench/label_noise.py, docs/benchmarks.md): the average of the two
sources' probabilities (``combine``), each row scored by the probability of its given label (cleanlab's
``self_confidence``). On two classes that ranks exactly as the normalized margin; on Financial PhraseBank's three it
found 0.64 of the flips in the top k against 0.53 (classic alone: 0.49 against 0.43).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from studio.data.prepare import PreparedData
from studio.errors import StudioError
from studio.evaluate import classic

CLASSIC_FOLDS = 5
SCORE_METHOD = "self_confidence"  # cleanlab's label-quality score; see the module's docstring for why


@dataclass
class LabelIssues:
    """The ranked suspects and how they were found."""

    table: pd.DataFrame  # row, text, label, suggested, score, source: most likely first
    rows_checked: int
    flagged: int  # rows cleanlab flags as issues (the table's first rows), conflicts included
    sources: list[str]
    seconds: float
    ranking: pd.DataFrame = field(repr=False, default=None)  # every row, most likely error first (benchmarks)

    def to_dict(self, limit: int | None = None) -> dict:
        rows = self.table.head(limit) if limit else self.table  # 0 or None: every issue
        return {"issues": [{"row": int(r.row), "text": r.text, "label": r.label, "suggested": r.suggested,
                            "score": round(float(r.score), 4), "source": r.source} for r in rows.itertuples()],
                "summary": {"rows_checked": self.rows_checked, "issues_found": self.flagged, "sources": self.sources,
                            "minutes": round(self.seconds / 60, 2)}}


def combine(sources: list[np.ndarray]) -> np.ndarray:
    """The average of the sources' class probabilities (each row sums to 1)."""
    return np.mean(np.stack(sources), axis=0)


def rank(frame: pd.DataFrame, labels: list[str], probs: np.ndarray, conflicts: list[dict],
         sources: list[str], method: str = SCORE_METHOD) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(flagged issues, every row ranked, flagged count). cleanlab flags rows whose given label is confidently
    contradicted (per-class thresholds: a minority class is not held to the majority's confidence) and scores each
    row's label quality (``method``); conflicting duplicates (one text, several labels) lead."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.array([labels.index(lb) for lb in frame["label"]])
    quality = get_label_quality_scores(y, probs, method=method)
    flagged = find_label_issues(y, probs, filter_by="prune_by_noise_rate", min_examples_per_class=1)
    in_conflict = set()
    for conflict in conflicts:
        in_conflict.update(conflict["rows"])
    suggested = [labels[i] for i in probs.argmax(axis=1)]
    ranked = pd.DataFrame({
        "row": frame["row"].astype(int).to_numpy(), "text": frame["text"].to_numpy(),
        "label": frame["label"].to_numpy(),
        "suggested": suggested, "score": 1.0 - quality,
        "source": [" + ".join(sources)] * len(frame)})
    conflict = ranked["row"].isin(in_conflict).to_numpy()
    ranked.loc[conflict, "source"] = "conflicting duplicate"
    ranked.loc[conflict, "score"] = 1.0 + ranked.loc[conflict, "score"]  # first, and among them by the model
    ranked["flagged"] = flagged | conflict
    ranked = ranked.sort_values(["flagged", "score"], ascending=[False, False], kind="stable").reset_index(drop=True)
    issues = ranked[ranked["flagged"]].drop(columns="flagged").reset_index(drop=True)
    issues["score"] = issues["score"].clip(upper=1.0)
    return issues, ranked.drop(columns="flagged"), int(ranked["flagged"].sum())


def find(prepared: PreparedData, *, llm_probs: np.ndarray | None = None, folds: int = CLASSIC_FOLDS,
         seed: int = 3407, started: float | None = None) -> LabelIssues:
    """Rank the likely label errors of every row of the prepared table (classic cross-fitting, plus the LLM's
    out-of-fold probabilities when given)."""
    started = started or time.perf_counter()
    frame, labels = prepared.table.frame, prepared.labels
    sources, probs = ["classic"], [classic.out_of_fold(frame, labels, folds, seed)]
    if llm_probs is not None:
        sources.append("LLM")
        probs.append(llm_probs)
    issues, ranking, flagged = rank(frame, labels, combine(probs), prepared.table.conflicts, sources)
    return LabelIssues(issues, len(frame), flagged, sources, time.perf_counter() - started, ranking)


# ---- LLM folds --------------------------------------------------------------------------------------------------
def fold_ids(frame: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Each row's fold, stratified by label; identical texts share a fold (a model must not have seen a row's twin)."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = pd.factorize(frame["text"])[0]
    out = np.zeros(len(frame), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(frame)), frame["label"], groups)):
        out[held] = fold
    return out


def llm_out_of_fold(prepared: PreparedData, config, k: int, workdir: Path, *, log: Callable[[str], None] = print,
                    progress: Callable[[str, float], None] | None = None,
                    stop: threading.Event | None = None) -> np.ndarray | None:
    """Every row's class probabilities from an LLM fine-tuned (with ``config``'s settings) on the other folds.
    Finished folds are kept in ``workdir`` and reused; returns None when stopped before every fold finished."""
    from studio.evaluate.evaluator import calibrated
    from studio.evaluate.scoring import LabelScorer
    from studio.models.loading import inference_autocast
    from studio.train.worker import start_training

    if k < 2:
        raise StudioError("--llm-folds needs at least 2 folds (each fold's model learns from the others).")
    frame, labels = prepared.table.frame, prepared.labels
    folds = fold_ids(frame, k, config.data.split_seed)
    workdir.mkdir(parents=True, exist_ok=True)
    out = np.full((len(frame), len(labels)), np.nan)
    for fold in range(k):
        done = workdir / f"fold-{fold}.npy"
        held = np.flatnonzero(folds == fold)
        if done.exists():
            out[held] = np.load(done)
            log(f"Fold {fold + 1} of {k}: kept from an earlier run.")
            continue
        if stop is not None and stop.is_set():
            return None
        train_file = workdir / f"fold-{fold}-train.csv"
        frame.iloc[np.flatnonzero(folds != fold)][["text", "label"]].to_csv(train_file, index=False)
        fold_config = config.replace({"name": f"fold-{fold + 1}-of-{k}", "data": {
            "path": str(train_file), "text_column": "text", "label_column": "label", "sha256": "", "counts": {},
            "label_codes": dict(prepared.codes), "rubric": prepared.rubric}})
        if progress:
            progress(f"LLM fold {fold + 1} of {k}: training on {len(frame) - len(held)} rows", fold / k)
        job = start_training(fold_config, workdir / "runs")
        while not job.wait(1.0):
            if stop is not None and stop.is_set():
                job.stop()
            if progress:
                snap = job.snapshot()
                share = snap["progress"] if snap["total_steps"] else 0.0
                progress(f"LLM fold {fold + 1} of {k}: {snap['phase']}, step {snap['step']}/"
                         f"{snap['total_steps'] or '?'}", (fold + 0.8 * share) / k)
        if job.state != "finished" or job.model is None:
            if stop is not None and stop.is_set():
                return None
            raise StudioError(f"LLM fold {fold + 1} of {k} did not finish ({job.state}): {job.error}")
        meta = json.loads((job.run.adapter / "studio.json").read_text(encoding="utf-8"))
        if progress:
            progress(f"LLM fold {fold + 1} of {k}: scoring its {len(held)} held-out rows", (fold + 0.8) / k)
        scorer = LabelScorer(job.model, job.tokenizer, meta["label_codes"], meta["rubric"], meta["prompt_format"],
                             autocast=inference_autocast(job.model.device.type))
        probs = calibrated(scorer.score(list(frame["text"].iloc[held])).probs, meta)
        np.save(done, probs)
        out[held] = probs
        log(f"Fold {fold + 1} of {k}: done ({len(held)} rows scored).")
    return out


def workdir_for(data_path: str, config) -> Path:
    """Where a file's LLM folds are kept: beside the studio's cache, keyed by the file's content and the settings."""
    from studio.data.prepare import file_sha256
    from studio.models.embedded import cache_dir

    key = hashlib.sha256((file_sha256(data_path) + json.dumps(config.to_dict(), sort_keys=True, default=str))
                         .encode()).hexdigest()[:16]
    return cache_dir() / "label-issues" / key
