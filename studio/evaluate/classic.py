"""The classic baseline: what a user gets without an LLM, in seconds. TF-IDF over word 1–2-grams and character
2–5-grams (sublinear term frequencies) into a logistic regression with balanced class weights (scikit-learn), trained
on exactly the run's training rows (before oversampling) and judged on the same Val A and Val B. Also the majority
baseline (always the most frequent label), so an accuracy is read next to what answering one label scores.

The same model gives the Data tab's "how hard is this data" hint (cross-validated macro-F1 within seconds of an
upload) and out-of-fold probabilities for every row (label-issue ranking).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, make_pipeline

from studio.evaluate.metrics import set_metrics

C = 10.0  # the regularisation chosen on Financial PhraseBank (docs/benchmarks.md, "Numbers the code relies on")


def classic_model():
    """An unfitted TF-IDF + logistic regression pipeline."""
    features = FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
    ])
    return make_pipeline(features, LogisticRegression(C=C, class_weight="balanced", max_iter=2000))


def fit(texts: list[str], labels: list[str]):
    return classic_model().fit(list(texts), list(labels))


def probabilities(model, texts: list[str], labels: list[str]) -> np.ndarray:
    """(rows, classes) in the order of ``labels`` (classes the model never saw get 0)."""
    if not len(texts):
        return np.zeros((0, len(labels)))
    raw = model.predict_proba(list(texts))
    out = np.zeros((len(texts), len(labels)))
    for k, lb in enumerate(model.classes_):
        if lb in labels:
            out[:, labels.index(lb)] = raw[:, k]
    return out


def baselines(train: pd.DataFrame, sets: dict[str, pd.DataFrame], labels: list[str], minority: str,
              model=None) -> dict:
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
        classic[name] = set_metrics(truth, predicted, labels, minority)
        always[name] = set_metrics(truth, [majority] * len(truth), labels, minority)
    return {"classic": classic, "majority": always, "majority_label": majority, "train_rows": len(train),
            "classic_seconds": round(seconds, 2), "model": model, "probs": probs}


def out_of_fold(frame: pd.DataFrame, labels: list[str], folds: int = 5, seed: int = 3407,
                fold_done=None) -> np.ndarray:
    """Each row's probabilities from a model that did not see it (k-fold cross-fitting, stratified by label).
    Classes with fewer rows than ``folds`` use as many folds as they allow (at least 2). ``fold_done(done, k)``
    after each fold."""
    y = frame["label"].to_numpy()
    k = max(2, min(folds, int(pd.Series(y).value_counts().min())))
    out = np.zeros((len(frame), len(labels)))
    texts = frame["text"].to_numpy()
    splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(texts, y)
    for done, (train_idx, test_idx) in enumerate(splits, 1):
        model = fit(texts[train_idx], y[train_idx])
        out[test_idx] = probabilities(model, list(texts[test_idx]), labels)
        if fold_done:
            fold_done(done, k)
    return out


def difficulty(frame: pd.DataFrame, labels: list[str], folds: int = 5, seed: int = 3407) -> dict:
    """The Data tab's "how hard is this data" hint: the classic model's cross-validated macro-F1 (out of fold)."""
    started = time.perf_counter()
    probs = out_of_fold(frame, labels, folds, seed)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    macro = f1_score(frame["label"], predicted, labels=labels, average="macro", zero_division=0)
    return {"macro_f1": float(macro), "folds": folds, "rows": len(frame),
            "seconds": round(time.perf_counter() - started, 2)}
