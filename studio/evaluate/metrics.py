"""Metrics for the UI's plots and the CLI's JSON, all through scikit-learn: confusion matrices (counts and
row-normalised), per-class precision/recall/F1/support, accuracy, macro-F1 and the minority class's recall;
the precision-recall curve of a two-class run's minority; the label-sanity list of confident disagreements.
What the numbers mean, in words, is in ``studio.evaluate.verdicts``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, f1_score,
                             precision_recall_curve, precision_recall_fscore_support)

from studio.classifier.candidates import INVALID, macro_f1

def set_metrics(y_true: list[str], y_pred: list[str], labels: list[str], minority: str | None = None) -> dict:
    """Metrics of one evaluation set. ``y_pred`` may contain INVALID (generate mode): it counts as wrong."""
    if not y_true:
        return {"n": 0, "accuracy": None, "macro_f1": None, "per_class": {}, "minority_label": minority,
                "minority_recall": None, "confusion_matrix": {"labels": labels, "predicted": labels,
                                                              "counts": [], "normalized": []}, "invalid": 0}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    predicted_labels = labels + ([INVALID] if INVALID in y_pred else [])
    cm = confusion_matrix(y_true, y_pred, labels=predicted_labels)[: len(labels)]
    totals = cm.sum(axis=1, keepdims=True)
    normalized = np.divide(cm, totals, out=np.zeros_like(cm, dtype=float), where=totals > 0)
    per_class = {lb: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                 for i, lb in enumerate(labels)}
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": per_class,
        "minority_label": minority,
        "minority_recall": per_class[minority]["recall"] if minority in per_class else None,
        "confusion_matrix": {"labels": labels, "predicted": predicted_labels, "counts": cm.tolist(),
                             "normalized": np.round(normalized, 4).tolist()},
        "invalid": int(sum(1 for y in y_pred if y == INVALID)),
    }


def share_better(y_true: np.ndarray, first: np.ndarray, second: np.ndarray, classes: int, draws: int = 1000,
                 seed: int = 0) -> float:
    """The share of ``draws`` paired bootstrap resamples of the rows on which predictions ``first`` have a higher
    macro-F1 than ``second`` (class indices below ``classes``): how sure the rows are that ``first`` is better."""
    y_true, first, second = (np.asarray(a, dtype=int) for a in (y_true, first, second))
    draw = np.random.default_rng(seed).integers(0, len(y_true), size=(draws, len(y_true)))
    return float(np.mean([macro_f1(y_true[d], first[d], classes) > macro_f1(y_true[d], second[d], classes)
                          for d in draw]))


def pr_curve(y_true: list[str], probs: np.ndarray, labels: list[str], positive: str) -> dict | None:
    """Precision-recall curve of the positive (minority) class, thinned to at most ~200 points for plotting."""
    if len(labels) != 2 or not y_true:
        return None
    truth = np.array([y == positive for y in y_true])
    if truth.all() or not truth.any():
        return None
    scores = probs[:, labels.index(positive)]
    precision, recall, thresholds = precision_recall_curve(truth, scores)
    keep = np.unique(np.linspace(0, len(thresholds) - 1, min(len(thresholds), 200)).round().astype(int))
    return {"positive": positive, "precision": precision[keep].round(4).tolist(),
            "recall": recall[keep].round(4).tolist(), "thresholds": thresholds[keep].round(4).tolist(),
            "average_precision": float(average_precision_score(truth, scores))}


def disagreements(frame: pd.DataFrame, probs: np.ndarray, predicted: list[str], labels: list[str],
                  set_name: str) -> pd.DataFrame:
    """Rows whose prediction differs from the given label, most confident first: label-noise candidates."""
    rows = []
    for (_, row), pred, p in zip(frame.iterrows(), predicted, probs):
        if pred != row["label"] and pred != INVALID:
            rows.append({"set": set_name, "row": int(row["row"]), "text": row["text"], "label": row["label"],
                         "predicted": pred, "confidence": round(float(p[labels.index(pred)]), 4),
                         "p_label": round(float(p[labels.index(row["label"])]), 4)})
    out = pd.DataFrame(rows, columns=["set", "row", "text", "label", "predicted", "confidence", "p_label"])
    return out.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)
