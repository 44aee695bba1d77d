"""The classic model, one of the classifier's sources: what a user gets without an LLM, in seconds. TF-IDF over word
1–2-grams and character 2–5-grams seen in at least two training rows (sublinear term frequencies) into a logistic
regression with balanced class weights (scikit-learn), trained on exactly the run's training rows (before
oversampling), and for use, once the choice is made, on every labelled row; its probabilities in the run's label
order; out-of-fold probabilities for every row (label-issue ranking, the Data tab's difficulty hint). Its figures
beside the LLM's are ``studio.evaluate.baselines``.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, make_pipeline

C = 10.0  # the regularisation chosen on Financial PhraseBank (docs/benchmarks.md, "Numbers the code relies on")
MIN_DF = 2  # n-grams seen in one training row only are dropped: the same or better macro-F1 on four datasets, fits
# 2x faster, models 2.4x smaller (docs/benchmarks.md, "Numbers the code relies on")


def classic_model(min_df: int = MIN_DF):
    """An unfitted TF-IDF + logistic regression pipeline."""
    features = FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=min_df)),
    ])
    return make_pipeline(features, LogisticRegression(C=C, class_weight="balanced", max_iter=2000))


def fit(texts: list[str], labels: list[str]):
    texts, labels = list(texts), list(labels)
    try:
        return classic_model().fit(texts, labels)
    except ValueError as err:  # a few rows whose words each appear once: keep them all
        if "no terms remain" not in str(err):
            raise
        return classic_model(min_df=1).fit(texts, labels)


def fit_in_background(train: pd.DataFrame, *held_out: pd.DataFrame, model=None) -> Future:
    """(the model fitted on the training rows, or ``model`` where it is already; the one fitted on every row) in a
    thread of its own, so that the fits overlap the LLM's scoring (on a GPU they take none of its time)."""
    def both():
        return (model if model is not None else fit(train["text"], train["label"]),
                fit_on_every_row(train, *held_out))

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classic-fit")
    future = pool.submit(both)
    pool.shutdown(wait=False)  # the thread ends with the fits
    return future


def fit_on_every_row(*frames: pd.DataFrame):
    """The classic model in use, fitted once the choice is made on every labelled row (training rows, Val A and
    Val B): a third more rows than the training rows alone (docs/benchmarks.md, "Many classes"). Its rules and
    figures are those of the model fitted on the training rows, so they stay held out."""
    rows = pd.concat([f[["text", "label"]] for f in frames if len(f)], ignore_index=True)
    return fit(rows["text"], rows["label"])


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


def out_of_fold(frame: pd.DataFrame, labels: list[str], folds: int = 5, seed: int = 3407,
                fold_done=None) -> np.ndarray:
    """Each row's probabilities from a model that did not see it (k-fold cross-fitting, stratified by label).
    Classes with fewer rows than ``folds`` use as many folds as they allow (at least 2). ``fold_done(done, k)``
    after each fold."""
    y = frame["label"].to_numpy()
    k = max(2, min(folds, int(pd.Series(y).value_counts().min())))
    out = np.zeros((len(frame), len(labels)))
    texts = frame["text"].to_numpy()
    splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(texts, y))
    # The folds fit side by side in worker processes, one per core (the vectorizers hold the interpreter lock:
    # threads would not overlap): the Data tab's hint on a 4,839-row file took 13.6 s one fold after another.
    workers = min(k, os.cpu_count() or 1)
    folded = Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(_fold)(texts[train_idx], y[train_idx], texts[test_idx], labels, test_idx)
        for train_idx, test_idx in splits) if workers > 1 else (
        _fold(texts[train_idx], y[train_idx], texts[test_idx], labels, test_idx) for train_idx, test_idx in splits)
    for done, (test_idx, probs) in enumerate(folded, 1):
        out[test_idx] = probs
        if fold_done:
            fold_done(done, k)
    return out


def _fold(train_texts, train_labels, test_texts, labels: list[str], test_idx):
    """One fold of ``out_of_fold``: (its rows, their probabilities from a model fitted on the other folds)."""
    return test_idx, probabilities(fit(train_texts, train_labels), list(test_texts), labels)
