"""Probabilities that mean what they say.

- Prior correction (label shift): a model trained on a 70/30 or 50/50 mix over-predicts the minority at the natural
  ratio. Its class probabilities are moved back to the natural prior: p(y|x) ∝ p_train(y|x) · π_natural(y) / π_train(y).
- Temperature scaling: one number T that divides the log-probabilities, fitted (by likelihood) on held-out rows that
  are not the rows reported: the reported figures use 2-fold cross-fitting over Val A (each half is calibrated by a T
  fitted on the other half); the T saved with the run is fitted on all of Val A. It never changes which class wins.
- Expected calibration error (ECE) and the reliability diagram, before and after.
- The binary decision threshold, chosen the same held-out way (never tuned on the rows it is reported on).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

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


def apply_calibration(probs: np.ndarray, card: dict, raw: bool = False) -> np.ndarray:
    """The scorer's probabilities as a run uses them: corrected to the natural class mix (the adapter card's
    ``class_prior``) and temperature-scaled (its ``temperature``); ``raw``: unchanged."""
    if raw:
        return probs
    prior = card.get("class_prior")
    if prior:
        probs = prior_correct(probs, np.array(prior["train"]), np.array(prior["natural"]))
    return with_temperature(probs, float(card.get("temperature") or 1.0))


def prior_correct(probs: np.ndarray, train_prior: np.ndarray, natural_prior: np.ndarray) -> np.ndarray:
    """Label-shift correction of each row's class probabilities (rows sum to 1 again)."""
    weights = np.asarray(natural_prior, dtype=float) / np.maximum(np.asarray(train_prior, dtype=float), EPS)
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
        return list(StratifiedKFold(n_splits=2, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    order = np.random.default_rng(seed).permutation(len(y))
    a, b = np.sort(order[: len(y) // 2]), np.sort(order[len(y) // 2:])
    return [(a, b), (b, a)]


def cross_fitted_temperature(probs: np.ndarray, y: np.ndarray, seed: int = 3407) -> tuple[np.ndarray, list[float]]:
    """Every row's probabilities scaled by a temperature fitted on the other half (the reported numbers); returns
    (calibrated probabilities, the two temperatures)."""
    out, temps = np.array(probs, dtype=float, copy=True), []
    for fit_idx, apply_idx in halves(y, seed):
        t = fit_temperature(probs[fit_idx], y[fit_idx])
        out[apply_idx] = with_temperature(probs[apply_idx], t)
        temps.append(t)
    return out, temps


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """The minority-class threshold with the best F1 of that class; None when the rows cannot decide it."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return None
    candidates = np.unique(np.clip(scores, 0.01, 0.99))
    f1s = [f1_score(positive, scores >= t, zero_division=0) for t in candidates]
    return float(candidates[int(np.argmax(f1s))])


def cross_fitted_threshold(scores: np.ndarray, positive: np.ndarray, seed: int = 3407) -> tuple[np.ndarray, list]:
    """Binary decisions where each half's threshold was chosen on the other half; returns (decisions, thresholds)."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    decided, chosen = scores >= 0.5, []
    for fit_idx, apply_idx in halves(positive.astype(int), seed):
        t = best_threshold(scores[fit_idx], positive[fit_idx])
        chosen.append(t)
        if t is not None:
            decided[apply_idx] = scores[apply_idx] >= t
    return decided, chosen
