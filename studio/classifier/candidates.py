"""The names every face and every report shares: the candidates (simplest first), what they are called, the tie
rule between them, the evaluation sets' titles, the note an empty text gets, the answer "unsure", and the one
macro-F1 the rules and the choice are judged by."""

from __future__ import annotations

import numpy as np

CANDIDATES = ("classic", "llm", "blend")  # simplest first: a tie goes to the earlier
NAMES = {"classic": "the classic model", "llm": "the fine-tuned LLM", "blend": "the blend"}
TIE = 0.005  # macro-F1: closer than this is a tie
SET_TITLES = {"val_a": "Val A (natural)", "val_b": "Val B (balanced)", "train": "Train"}
EMPTY_NOTE = "empty text: not classified"
INVALID = "(invalid)"  # a generated answer that matches no label code (generate mode): counts as wrong
UNSURE = "unsure"  # the answer where no class is likely enough (a rule's ``unsure_below``): counts as not answered


def label_of(labels: list[str], index: int) -> str:
    """The answer a decided index stands for: a class, or past the classes ``UNSURE``."""
    return labels[index] if index < len(labels) else UNSURE


def tied_best(scores: dict[str, float]) -> list[str]:
    """The candidates within ``TIE`` of the best score, simplest first (the first of them is the one chosen)."""
    best = max(scores.values())
    return [name for name in CANDIDATES if name in scores and scores[name] >= best - TIE]


def simplest_best(scores: dict[str, float]) -> str:
    """The candidate a choice by these scores takes: the best, a tie going to the simpler."""
    return tied_best(scores)[0]


def macro_f1(y: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """Macro-F1 over ``classes`` class indices, ``classes`` itself "unsure" (a class absent from both counts 0, as
    scikit-learn's ``zero_division=0``): the choice and the bootstrap call it thousands of times, so numpy alone."""
    y, predicted = np.asarray(y, dtype=int), np.asarray(predicted, dtype=int)
    width = classes + 1  # the last column: "unsure" (a text not answered is wrong, and no class's false positive)
    cm = np.bincount(y * width + np.minimum(predicted, classes), minlength=classes * width).reshape(classes, width)
    both = cm[:, :classes].sum(axis=0) + cm.sum(axis=1)
    return float(np.mean(np.divide(2 * np.diag(cm), both, out=np.zeros(classes), where=both > 0)))
