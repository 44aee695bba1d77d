"""Label sanity over the whole file: every row gets out-of-sample class probabilities (cross-fitting: each row scored
by a model that never saw it), cleanlab's confident learning ranks the likely label errors, and the conflicting
duplicates the reader found come first.

Sources of probabilities:
- the classic model (TF-IDF + logistic regression), k folds: seconds;
- the LLM, when asked: K folds on a run's settings, each trained on the other rows and scoring its own rows
  (``fold_ids`` here; the folds are trained by ``studio.door.labels``, which composes training and scoring).

Combination and score: the two sources' probabilities stacked by a logistic regression on their log-probabilities,
fitted to the given labels and cross-fitted (``combine``; it ranked planted flips better than their average, a
geometric mean or a weighted average), each row scored by the probability of its given label (cleanlab's
``self_confidence``): measured with planted flips in docs/benchmarks.md, "Label noise" (``bench/label_noise.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict

from studio.data.prepare import PreparedData
from studio.classifier import classic

CLASSIC_FOLDS = 5
STACK_FOLDS = 5  # the cross-fitting of the regression that combines the classic model's and the LLM's probabilities
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


def combine(sources: list[np.ndarray], given: np.ndarray | None = None, seed: int = 3407) -> np.ndarray:
    """One source's class probabilities, or several sources' combined: with the given labels (class indices), a
    logistic regression on the sources' log-probabilities fitted to them and cross-fitted (each row's probabilities
    from a regression that did not see it), which ranked planted flips better than the sources' average on both
    datasets measured; the average where a class has too few rows to cross-fit."""
    if len(sources) == 1:
        return sources[0]
    average = np.mean(np.stack(sources), axis=0)
    if given is None:
        return average
    counts = np.bincount(given, minlength=average.shape[1])
    present = np.flatnonzero(counts)
    folds = min(STACK_FOLDS, int(counts[present].min())) if len(present) > 1 else 0
    if folds < 2:
        return average
    features = np.log(np.clip(np.hstack(sources), 1e-12, 1.0))
    stacked = cross_val_predict(LogisticRegression(max_iter=2000), features, given, method="predict_proba",
                                cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    out = np.zeros_like(average)
    out[:, present] = stacked  # a class no row is labelled with gets no probability
    return out


def rank(frame: pd.DataFrame, labels: list[str], probs: np.ndarray, conflicts: list[dict],
         sources: list[str], method: str = SCORE_METHOD) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(flagged issues, every row ranked, flagged count). cleanlab flags rows whose given label is confidently
    contradicted (per-class thresholds: a minority class is not held to the majority's confidence) and scores each
    row's label quality (``method``); conflicting duplicates (one text, several labels) lead."""

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
         seed: int = 3407, started: float | None = None, fold_done=None) -> LabelIssues:
    """Rank the likely label errors of every row of the prepared table (classic cross-fitting, plus the LLM's
    out-of-fold probabilities when given); ``fold_done(done, k)`` after each classic fold."""
    started = started or time.perf_counter()
    frame, labels = prepared.table.frame, prepared.labels
    sources, probs = ["classic"], [classic.out_of_fold(frame, labels, folds, seed, fold_done)]
    if llm_probs is not None:
        sources.append("LLM")
        probs.append(llm_probs)
    given = np.array([labels.index(lb) for lb in frame["label"]])
    issues, ranking, flagged = rank(frame, labels, combine(probs, given, seed), prepared.table.conflicts, sources)
    return LabelIssues(issues, len(frame), flagged, sources, time.perf_counter() - started, ranking)


# ---- LLM folds --------------------------------------------------------------------------------------------------
def fold_ids(frame: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Each row's fold, stratified by label; identical texts share a fold (a model must not have seen a row's twin)."""

    groups = pd.factorize(frame["text"])[0]
    out = np.zeros(len(frame), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(frame)), frame["label"], groups)):
        out[held] = fold
    return out
