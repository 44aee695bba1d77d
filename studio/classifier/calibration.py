"""Probabilities that mean what they say: the pieces the candidates' rules are made of (``studio.classifier.rules``
keeps each where held-out rows say it helps).

- Prior correction (label shift): a model trained on a 70/30 or 50/50 mix over-predicts the minority at the natural
  ratio. Its class probabilities are moved back toward the natural prior: p(y|x) ∝ p_train(y|x) · (π_natural(y) /
  π_train(y))^s, where s (0, ½, 1) says how far.
- Temperature scaling: one number T that divides the log-probabilities, fitted by likelihood. It never changes which
  class wins.
- Expected calibration error (ECE) and the reliability diagram.
- Two stratified halves for cross-fitting: fit on one, apply on the other.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.5, 20.0


def class_priors(counts: dict, labels: list[str]) -> dict | None:
    """Training mix and natural mix of the classes (shares in label order), from the prepared data's counts; None
    when they are the same (no oversampling): then there is nothing to correct."""
    train = np.array([counts["train_after"].get(lb, 0) for lb in labels], dtype=float)
    natural = np.array([counts["train_before"].get(lb, 0) for lb in labels], dtype=float)
    if train.sum() == 0 or natural.sum() == 0 or (natural == 0).any():
        return None
    train, natural = train / train.sum(), natural / natural.sum()
    if np.allclose(train, natural, atol=1e-3):
        return None
    return {"train": train.round(6).tolist(), "natural": natural.round(6).tolist()}


def prior_correct(probs: np.ndarray, train_prior, natural_prior, strength: float = 1.0) -> np.ndarray:
    """Label-shift correction of each row's class probabilities, ``strength`` of the way from the training mix to
    the natural one (0: none); rows sum to 1 again."""
    if not strength:
        return np.asarray(probs, dtype=float)
    weights = (np.asarray(natural_prior, dtype=float) / np.maximum(np.asarray(train_prior, dtype=float), EPS)) \
        ** strength
    out = np.asarray(probs, dtype=float) * weights
    return out / np.maximum(out.sum(axis=1, keepdims=True), EPS)


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of log(p) / T: T > 1 softens over-confident probabilities, T < 1 sharpens them."""
    logits = np.log(np.maximum(np.asarray(probs, dtype=float), EPS)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(y)), y], EPS))))


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The T that minimises the negative log-likelihood of the true classes, searched over log T in [0.5, 20]. On
    rows the model gets all right the likelihood only keeps rising as T falls (no best T exists): T stays 1."""
    from scipy.optimize import minimize_scalar  # (scipy: not at the page's start)

    if len(y) < 2 or (np.asarray(probs).argmax(axis=1) == np.asarray(y)).all():
        return 1.0
    result = minimize_scalar(lambda log_t: nll(with_temperature(probs, float(np.exp(log_t))), y),
                             bounds=(np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)), method="bounded")
    return float(np.exp(result.x))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> dict:
    """Confidence (the top class's probability) against accuracy, in equal-width bins; ECE is the bins' weighted
    gap between the two."""
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    if len(y) == 0:
        return {"ece": None, "bins": []}
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if not inside.any():
            continue
        conf, acc = float(confidence[inside].mean()), float(correct[inside].mean())
        ece += inside.mean() * abs(conf - acc)
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "confidence": round(conf, 4),
                     "accuracy": round(acc, 4), "count": int(inside.sum())})
    return {"ece": round(float(ece), 4), "bins": rows}


def halves(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two stratified halves (fit on one, apply on the other, and the other way round); one class with a single row
    still works: plain halves then."""
    y = np.asarray(y)
    if len(y) < 4:
        return []
    counts = np.bincount(y)
    if counts[counts > 0].min() >= 2:
        from sklearn.model_selection import StratifiedKFold  # (scikit-learn: not at the page's start)

        return list(StratifiedKFold(n_splits=2, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    order = np.random.default_rng(seed).permutation(len(y))
    a, b = np.sort(order[: len(y) // 2]), np.sort(order[len(y) // 2:])
    return [(a, b), (b, a)]
