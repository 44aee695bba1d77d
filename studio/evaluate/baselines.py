"""The references an evaluation is read against: the classic model (its most probable class) and always answering the
majority label, on the same Val A and Val B as the fine-tuned model; and the Data tab's "how hard is this data"
hint (the classic model's cross-validated macro-F1, within seconds of an upload)."""

from __future__ import annotations

import time

import pandas as pd
from sklearn.metrics import f1_score

from studio.classifier.classic import fit, out_of_fold, probabilities
from studio.evaluate.metrics import set_metrics


def baselines(train: pd.DataFrame, sets: dict[str, pd.DataFrame], labels: list[str], minority: str,
              model=None, out_of_scope: str | None = None) -> dict:
    """Metrics of the classic model (its most probable class) and of the majority baseline on each set, in the shape
    of the model's own (``set_metrics``); the classic model's training time; and, for the candidates, the fitted
    model (``model``: one already fitted on these rows) and its probabilities on each set (``probs``)."""
    started = time.perf_counter()
    model = model if model is not None else fit(train["text"], train["label"])
    seconds = time.perf_counter() - started
    majority = train["label"].value_counts().idxmax()
    classic, always, probs = {}, {}, {}
    for name, frame in sets.items():
        truth = list(frame["label"])
        probs[name] = probabilities(model, list(frame["text"]), labels)
        predicted = [labels[i] for i in probs[name].argmax(axis=1)] if len(frame) else []
        classic[name] = set_metrics(truth, predicted, labels, minority, out_of_scope)
        always[name] = set_metrics(truth, [majority] * len(truth), labels, minority, out_of_scope)
    return {"classic": classic, "majority": always, "majority_label": majority, "train_rows": len(train),
            "classic_seconds": round(seconds, 2), "model": model, "probs": probs}


def difficulty(frame: pd.DataFrame, labels: list[str], folds: int = 5, seed: int = 3407) -> dict:
    """The Data tab's "how hard is this data" hint: the classic model's cross-validated macro-F1 (out of fold)."""
    started = time.perf_counter()
    probs = out_of_fold(frame, labels, folds, seed)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    macro = f1_score(frame["label"], predicted, labels=labels, average="macro", zero_division=0)
    return {"macro_f1": float(macro), "folds": folds, "rows": len(frame),
            "seconds": round(time.perf_counter() - started, 2)}
