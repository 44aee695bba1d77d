"""Evaluation of a classifier in memory: Val A (natural ratio) and Val B (balanced) scored side by side, beside the
untrained model (the same base model without the adapter), the classic model (TF-IDF + logistic regression on the same
training rows) and always answering the majority label; probabilities corrected to the natural class mix and
calibrated on held-out halves; the binary threshold chosen the same held-out way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from studio.data.prepare import PreparedData
from studio.errors import StudioError
from studio.evaluate import classic
from studio.evaluate.calibration import (
    best_threshold,
    class_priors,
    cross_fitted_temperature,
    cross_fitted_threshold,
    fit_temperature,
    prior_correct,
    reliability,
    with_temperature,
)
from studio.evaluate.metrics import (
    disagreements,
    pr_curve,
    predict_with_threshold,
    set_metrics,
)
from studio.evaluate.scoring import LabelScorer
from studio.evaluate.verdicts import verdicts
from studio.models.loading import inference_autocast
from studio.runs.score_cache import cached_scores

MODES = ("score", "generate")
SET_NAMES = {"val_a": "Val A (natural)", "val_b": "Val B (balanced)", "train": "Train"}
CPU_SCORING_BATCH, GPU_SCORING_BATCH = 16, 256  # rows per scoring batch (docs/benchmarks.md, label scoring)


@dataclass
class SetScores:
    frame: pd.DataFrame  # text, label, row
    probs: np.ndarray  # (rows, classes): the model's probabilities as used (prior-corrected, calibrated); one-hot in
    # generate mode
    generated: list[str] | None = None  # generate mode: parsed labels (INVALID included)
    raw: np.ndarray | None = None  # the scorer's own probabilities, before prior correction and calibration


@dataclass
class Evaluation:
    labels: list[str]
    codes: dict[str, str]
    minority: str
    mode: str
    sets: dict[str, SetScores]
    untrained: dict[str, SetScores] | None = None  # the same base model without the adapter
    conflicts: list[dict] = field(default_factory=list)
    threshold: float | None = None
    priors: dict | None = None  # {"train": [...], "natural": [...]} shares in label order: prior correction
    temperature: float = 1.0  # fitted on all of Val A: what predict, the playground and the exports use
    calibration: dict = field(default_factory=dict)
    references: dict | None = None  # the classic and majority models (studio.evaluate.classic.baselines)

    def predictions(self, name: str, threshold: float | None = None, untrained: bool = False,
                    raw: bool = False) -> list[str]:
        scores = (self.untrained if untrained else self.sets)[name]
        if scores.generated is not None:
            return scores.generated
        probs = scores.raw if raw and scores.raw is not None else scores.probs
        return predict_with_threshold(probs, self.labels, self.minority, threshold)

    def report(self, threshold: float | None = ..., max_disagreements: int = 200) -> dict:
        """JSON-ready metrics; ``threshold`` defaults to the one saved with the evaluation. The keys stay those of
        earlier reports: ``baseline`` is the untrained model, ``classic_baseline`` and ``majority_baseline`` the
        references."""
        t = self.threshold if threshold is ... else threshold
        out = {"mode": self.mode, "labels": self.labels, "codes": self.codes, "minority_label": self.minority,
               "threshold": t}
        for name, scores in self.sets.items():
            out[name] = self._metrics(scores, self.predictions(name, t))
        out["invalid"] = sum(out[name]["invalid"] for name in self.sets)
        if self.priors and self.mode == "score":
            out["prior_correction"] = {"train": dict(zip(self.labels, self.priors["train"])),
                                       "natural": dict(zip(self.labels, self.priors["natural"]))}
            out["without_prior_correction"] = {name: self._metrics(s, self.predictions(name, t, raw=True))
                                               for name, s in self.sets.items()}
        if self.untrained:
            out["baseline"] = {name: self._metrics(s, self.predictions(name, t, untrained=True))
                               for name, s in self.untrained.items()}
        if self.references:
            out["classic_baseline"] = self.references["classic"]
            out["majority_baseline"] = {**self.references["majority"], "label": self.references["majority_label"]}
        if self.calibration:
            out["calibration"] = {**self.calibration, "temperature": self.temperature}
        if self.mode == "score":
            out["pr_curve"] = {name: pr_curve(list(s.frame["label"]), s.probs, self.labels, self.minority)
                               for name, s in self.sets.items()}
        out["verdicts"] = verdicts(out)
        table = self.disagreements(t)
        out["disagreements_total"] = len(table)
        out["disagreements"] = table.head(max_disagreements).to_dict("records")
        out["conflicts"] = self.conflicts
        return out

    def _metrics(self, scores: SetScores, predicted: list[str]) -> dict:
        return set_metrics(list(scores.frame["label"]), predicted, self.labels, self.minority)

    def disagreements(self, threshold: float | None = ...) -> pd.DataFrame:
        """Label-noise candidates, most confident first, judged by the model as trained (before the correction to
        the natural class mix, which would favour the majority label over a minority text's own label)."""
        t = self.threshold if threshold is ... else threshold
        parts = [disagreements(s.frame, s.raw if s.raw is not None else s.probs,
                               self.predictions(name, t, raw=True), self.labels, SET_NAMES[name])
                 for name, s in self.sets.items()]
        merged = pd.concat(parts, ignore_index=True)
        return merged.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)

    def calibrate(self, seed: int = 3407) -> None:
        """Prior correction, then temperature scaling: cross-fitted on Val A for the reported figures, fitted on all of
        Val A for use (the saved temperature)."""
        for scores in self.sets.values():
            scores.raw = scores.probs
            if self.priors:
                scores.probs = prior_correct(scores.probs, np.array(self.priors["train"]),
                                             np.array(self.priors["natural"]))
        val_a = self.sets.get("val_a")
        if val_a is None or len(val_a.frame) < 4:
            return
        y = np.array([self.labels.index(lb) for lb in val_a.frame["label"]])
        corrected = val_a.probs
        calibrated, temps = cross_fitted_temperature(corrected, y, seed)  # the reported ECE: held-out halves
        self.temperature = fit_temperature(corrected, y)  # what is used from now on
        self.calibration = {"fitted_on": f"Val A, 2-fold cross-fitted ({len(y)} rows): each half is calibrated by a "
                                         "temperature fitted on the other half",
                            "cross_fitted_temperatures": [round(t, 4) for t in temps],
                            "before": reliability(corrected, y), "after": reliability(calibrated, y)}
        for scores in self.sets.values():
            scores.probs = with_temperature(scores.probs, self.temperature)
        if len(self.labels) == 2:
            self._suggest_threshold(val_a, calibrated, seed)

    def _suggest_threshold(self, val_a: SetScores, calibrated: np.ndarray, seed: int) -> None:
        positive = np.array([lb == self.minority for lb in val_a.frame["label"]])
        k = self.labels.index(self.minority)
        decided, chosen = cross_fitted_threshold(calibrated[:, k], positive, seed)
        other = self.labels[1 - k]
        predicted = [self.minority if d else other for d in decided]
        self.calibration["threshold"] = {
            "suggested": best_threshold(calibrated[:, k], positive),
            "cross_fitted": [None if c is None else round(c, 4) for c in chosen],
            "val_a_with_cross_fitted_thresholds": set_metrics(list(val_a.frame["label"]), predicted,
                                                              self.labels, self.minority)}


def make_scorer(model, tokenizer, prepared: PreparedData, batch_size: int | None = None,
                reuse_prefix: bool | None = None, fast: bool = True) -> LabelScorer:
    """``fast``: bfloat16 compute on a CPU that has it (evaluation of many rows); False for exact comparisons."""
    device = model.device.type
    return LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format,
                       batch_size=batch_size or (GPU_SCORING_BATCH if device == "cuda" else CPU_SCORING_BATCH),
                       reuse_prefix=reuse_prefix, autocast=inference_autocast(device) if fast else None)


def score_sets(scorer: LabelScorer, frames: dict[str, pd.DataFrame], mode: str,
               cache_key: str | None = None, progress=None, what: str = "") -> dict[str, SetScores]:
    """Each set's scores; ``progress(message, fraction)`` while scoring (the UI's bar, the CLI's lines)."""
    out = {}
    for name, frame in frames.items():
        def step(done, total, name=name):
            if progress:
                progress(f"Scoring {SET_NAMES[name]}{what}: {done} of {total} rows", done / max(1, total))

        texts = list(frame["text"])
        if mode == "generate":
            labels, _ = scorer.generate(texts)
            probs = np.array([[1.0 if lb == c else 0.0 for c in scorer.labels] for lb in labels]).reshape(
                len(labels), len(scorer.labels))
            out[name] = SetScores(frame, probs, generated=labels)
        elif not texts:
            out[name] = SetScores(frame, np.zeros((0, len(scorer.labels))))
        else:
            out[name] = SetScores(frame, cached_scores(scorer, texts, cache_key, step) if cache_key else
                                  scorer.score(texts, step).probs)
    return out


def evaluate_model(model, tokenizer, prepared: PreparedData, *, mode: str = "score", untrained: bool = True,
                   include_train: bool = False, batch_size: int | None = None, threshold: float | None = None,
                   priors: dict | None = ..., base_key: str | None = None, references: bool = True,
                   progress=None) -> Evaluation:
    """Score Val A and Val B (and optionally the un-oversampled training rows) with the model as it is; correct the
    probabilities to the natural class mix (``priors``, default: from the prepared counts) and calibrate them; the
    untrained model (its scores cached under ``base_key``, the base model's identity), the classic model and the
    majority label beside it."""
    if mode not in MODES:
        raise StudioError(f"mode must be one of {', '.join(MODES)} (got '{mode}').")
    frames = {"val_a": prepared.split.val_a, "val_b": prepared.split.val_b}
    if include_train:
        frames["train"] = prepared.split.train
    if all(len(f) == 0 for f in frames.values()):
        raise StudioError("There are no validation rows to evaluate on; lower val_fraction's minimum or add rows.")
    sets = score_sets(make_scorer(model, tokenizer, prepared, batch_size), frames, mode, progress=progress)
    before = None
    if untrained and hasattr(model, "disable_adapter"):
        with model.disable_adapter():  # the same weights without LoRA: what training bought
            before = score_sets(make_scorer(model, tokenizer, prepared, batch_size), frames, mode,
                                cache_key=base_key if mode == "score" else None, progress=progress,
                                what=" with the untrained model")
    if progress:
        progress("Classic model, calibration and metrics", 1.0)
    minority = prepared.table.minority_label
    evaluation = Evaluation(labels=prepared.labels, codes=prepared.codes, minority=minority, mode=mode, sets=sets,
                            untrained=before, conflicts=prepared.table.conflicts, threshold=threshold,
                            priors=class_priors(prepared.counts(), prepared.labels) if priors is ... else priors)
    if mode == "score":
        evaluation.calibrate()
    if references and len(prepared.split.train):
        evaluation.references = classic.baselines(prepared.split.train, frames, prepared.labels, minority)
    return evaluation
