"""Metrics for the UI's plots and the CLI's JSON, all through scikit-learn: confusion matrices (counts and
row-normalised), per-class precision/recall/F1/support, accuracy, macro-F1 and the minority class's recall;
the binary decision threshold and its precision-recall curve; the label-sanity list of confident
disagreements; and the report in words (``summary_lines``), written once for the CLI, the UI and the model card.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, f1_score,
                             precision_recall_curve, precision_recall_fscore_support)

INVALID = "(invalid)"  # a generated answer that matches no label code


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


def predict_with_threshold(probs: np.ndarray, labels: list[str], positive: str | None,
                           threshold: float | None) -> list[str]:
    """Argmax, or for binary tasks with a threshold: the positive (minority) class when its probability ≥ t."""
    if threshold is None or positive is None or len(labels) != 2:
        return [labels[i] for i in probs.argmax(axis=1)]
    k = labels.index(positive)
    other = labels[1 - k]
    return [positive if row[k] >= threshold else other for row in probs]


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


def metrics_table(report: dict) -> pd.DataFrame:
    """Per-class rows (precision, recall, F1, support) of one set's metrics, for tables and model cards."""
    return pd.DataFrame([{"label": lb, **vals} for lb, vals in report["per_class"].items()])


def verdicts(report: dict) -> list[str]:
    """What the numbers mean, in words (see ``judged``)."""
    return [text for _, text in judged(report)]


def judged(report: dict) -> list[tuple[bool, str]]:
    """(good news?, sentence): against always answering the majority label, against the classic model and the
    untrained model, and whether the model collapsed onto one class."""
    out: list[tuple[bool, str]] = []
    a = report.get("val_a") or {}
    if not a.get("n"):
        return out
    majority = (report.get("majority_baseline") or {}).get("val_a")
    if majority and a["accuracy"] is not None and a["accuracy"] < majority["accuracy"]:
        out.append((False, f"Val A accuracy {a['accuracy']:.3f} is worse than always answering the majority label "
                           f"'{report['majority_baseline']['label']}' ({majority['accuracy']:.3f}): judge this model "
                           "by macro-F1 and minority recall, and train longer or on more balanced data."))
    counts = a["confusion_matrix"]["counts"]
    if counts:
        predicted = np.array(counts).sum(axis=0)[: len(report["labels"])]
        truth = np.array(counts).sum(axis=1)
        top = int(predicted.argmax())
        share, true_share = predicted[top] / max(1, predicted.sum()), truth[top] / max(1, truth.sum())
        if share >= 0.8 and true_share < 0.6 and len(report["labels"]) > 1:
            out.append((False, f"Collapse: the model predicts '{report['labels'][top]}' for {100 * share:.0f}% of "
                               f"Val A rows (the truth: {100 * true_share:.0f}%). Its minority recall and accuracy "
                               "mean little: train longer, or check the label codes."))
    classic = (report.get("classic_baseline") or {}).get("val_a")
    if classic and classic.get("macro_f1") is not None:
        gain = a["macro_f1"] - classic["macro_f1"]
        if gain >= 0:
            out.append((True, f"The fine-tuned model adds {gain:+.3f} macro-F1 over a classic model (TF-IDF + "
                              f"logistic regression, {classic['macro_f1']:.3f}) on Val A."))
        else:
            out.append((False, f"A classic model (TF-IDF + logistic regression) is better on this data: Val A "
                               f"macro-F1 {classic['macro_f1']:.3f} against this model's {a['macro_f1']:.3f} "
                               f"({gain:+.3f}). Train longer, or use the classic model."))
    base = (report.get("baseline") or {}).get("val_a")
    if base and base.get("macro_f1") is not None:
        before, after = base["macro_f1"], a["macro_f1"]
        if round(after, 3) == round(before, 3):
            text = (f"Training left Val A macro-F1 unchanged ({after:.3f}, as untrained): train longer, or check "
                    "the data.")
        else:
            text = f"Training {'raised' if after > before else 'lowered'} Val A macro-F1 from {before:.3f} " \
                   f"(untrained) to {after:.3f}."
        out.append((after > before + 0.0005, text))
    return out


SETS = (("val_a", "Val A (natural)"), ("val_b", "Val B (balanced)"), ("train", "Train"))
METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("minority_recall", "minority recall"))


def summary_lines(report: dict) -> list[str]:
    """The evaluation in words and one table: the fine-tuned model beside the untrained model, a classic model and
    always answering the majority label; the probabilities' calibration; what the numbers mean."""
    sets = [(key, title) for key, title in SETS if key in report]
    lines = [f"Mode {report['mode']} · minority class '{report['minority_label']}'"
             + (f" · threshold {report['threshold']}" if report.get("threshold") is not None else "")
             + " · " + ", ".join(f"{report[k]['n']} {t.split(' (')[0]} rows" for k, t in sets)]
    columns = [("fine-tuned", report)] + [(name, report[key]) for key, name in (
        ("baseline", "untrained"), ("classic_baseline", "classic"), ("majority_baseline", "majority"))
        if report.get(key)]
    head = "| set | metric | " + " | ".join(name for name, _ in columns) + " |"
    lines += [head, "|" + "---|" * (len(columns) + 2)]
    for key, title in sets:
        for metric, name in METRICS:
            cells = []
            for _, source in columns:
                value = (source.get(key) or {}).get(metric)
                cells.append("-" if value is None else f"{value:.3f}")
            lines.append(f"| {title} | {name} | " + " | ".join(cells) + " |")
    raw = report.get("without_prior_correction")
    if raw:
        natural = ", ".join(f"{lb} {share:.0%}" for lb, share in report["prior_correction"]["natural"].items())
        lines.append(f"Probabilities corrected from the training mix to the natural mix ({natural}). Without the "
                     f"correction: Val A macro-F1 {raw['val_a']['macro_f1']:.3f}, minority recall "
                     f"{_f(raw['val_a']['minority_recall'])}; Val B minority recall "
                     f"{_f(raw.get('val_b', {}).get('minority_recall'))}.")
    cal = report.get("calibration")
    if cal and cal.get("before", {}).get("ece") is not None:
        lines.append(f"Calibration on Val A (held-out halves): expected calibration error "
                     f"{cal['before']['ece']:.3f} → {cal['after']['ece']:.3f} with temperature scaling; the "
                     f"temperature used from now on is {cal['temperature']:.2f}.")
        threshold = cal.get("threshold") or {}
        if threshold.get("suggested") is not None:
            held = threshold["val_a_with_cross_fitted_thresholds"]
            lines.append(f"A minority threshold chosen on held-out halves gives Val A macro-F1 {held['macro_f1']:.3f}, "
                         f"minority recall {_f(held['minority_recall'])}; chosen on all of Val A it is "
                         f"{threshold['suggested']:.2f} (saved only when you save it).")
    lines += report.get("verdicts") or []
    if report.get("invalid"):
        lines.append(f"Invalid generations (no label code): {report['invalid']}.")
    lines += [f"Note: {n}" for n in report.get("notes", [])]
    return lines


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"
