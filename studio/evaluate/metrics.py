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

from studio.classifier.candidates import INVALID, UNSURE, macro_f1

def set_metrics(y_true: list[str], y_pred: list[str], labels: list[str], minority: str | None = None,
                out_of_scope: str | None = None) -> dict:
    """Metrics of one evaluation set. ``y_pred`` may contain INVALID (generate mode) and UNSURE (a rule's unsure
    cut): both count as wrong, each a column of its own in the confusion matrix. With an out-of-scope class, its own
    figures too (``scope_metrics``); with "unsure" answers, the answered texts' (``answered_metrics``)."""
    if not y_true:
        return {"n": 0, "accuracy": None, "macro_f1": None, "per_class": {}, "minority_label": minority,
                "minority_recall": None, "confusion_matrix": {"labels": labels, "predicted": labels,
                                                              "counts": [], "normalized": []}, "invalid": 0}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    unsure = [i for i, y in enumerate(y_pred) if y == UNSURE and UNSURE not in labels]
    predicted_labels = labels + [extra for extra in (INVALID, UNSURE) if extra in y_pred and extra not in labels]
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
        **({"out_of_scope": scope_metrics(y_true, y_pred, out_of_scope)} if out_of_scope else {}),
        **({"answered": answered_metrics(y_true, y_pred, unsure)} if unsure else {}),
    }


def answered_metrics(y_true: list[str], y_pred: list[str], unsure: list[int]) -> dict:
    """Where the classifier may answer "unsure": how many texts it answered, and how often those answers are right
    (the accuracy its unsure rule was fitted to keep)."""
    answered = np.ones(len(y_true), dtype=bool)
    answered[unsure] = False
    truth, pred = np.asarray(y_true, dtype=object)[answered], np.asarray(y_pred, dtype=object)[answered]
    return {"unsure": len(unsure), "share": float(answered.mean()),
            "accuracy": float(np.mean(truth == pred)) if answered.any() else None}


def scope_metrics(y_true: list[str], y_pred: list[str], out_of_scope: str) -> dict:
    """The two questions of an intent set with a "none of these" class, apart (CLINC150's measures): how often an
    in-scope text gets its own class, and how well the out-of-scope ones are caught (recall, precision)."""
    truth, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    inside, caught, said = truth != out_of_scope, pred == out_of_scope, pred == out_of_scope
    return {"label": out_of_scope, "in_scope": int(inside.sum()), "out_of_scope": int((~inside).sum()),
            "in_scope_accuracy": float(np.mean(truth[inside] == pred[inside])) if inside.any() else None,
            "recall": float(np.mean(caught[~inside])) if (~inside).any() else None,
            "precision": float(np.mean(~inside[said])) if said.any() else None}


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


def confused_pairs(metrics: dict, top: int = 20) -> list[dict]:
    """The most frequent mistakes of one set, most first: (true label, predicted label, rows, share of the true
    label's rows). What a 150-class matrix hides in its 22,500 cells."""
    cm = metrics.get("confusion_matrix") or {}
    counts = np.asarray(cm.get("counts") or [], dtype=int)
    if not counts.size:
        return []
    totals = counts.sum(axis=1)
    pairs = [{"true": t, "predicted": p, "rows": int(counts[i, j]), "share": round(counts[i, j] / totals[i], 3)}
             for i, t in enumerate(cm["labels"]) for j, p in enumerate(cm["predicted"])
             if t != p and counts[i, j] > 0]
    return sorted(pairs, key=lambda x: (-x["rows"], -x["share"], x["true"]))[:top]


def worst_classes(metrics: dict, n: int) -> list[str]:
    """The ``n`` classes with the lowest F1 on one set (the most rows first among equals), in label order."""
    per_class = metrics.get("per_class") or {}
    ranked = sorted(per_class, key=lambda lb: (per_class[lb]["f1"], -per_class[lb]["support"]))[:n]
    return [lb for lb in per_class if lb in set(ranked)]
