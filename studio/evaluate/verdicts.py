"""The evaluation report in words, written once for the CLI, the UI and the model card: one table of the fine-tuned
model beside the untrained model, the classic model and always answering the majority label, what the numbers mean
(``judged``: good news or bad news), the calibration and the threshold.
"""

from __future__ import annotations

import numpy as np


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
