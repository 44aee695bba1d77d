"""Evaluation of a classifier in memory: Val A (natural ratio) and Val B (balanced) scored side by side, beside the
untrained model (the same base model without the adapter), the classic model (TF-IDF + logistic regression on the same
training rows) and always answering the majority label; probabilities corrected to the natural class mix and
calibrated on held-out halves; the binary threshold chosen the same held-out way.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from studio.classifier import choice
from studio.classifier.calibration import class_priors, reliability
from studio.classifier.candidates import SET_TITLES, label_of
from studio.classifier.rules import Rule, Sources, Task
from studio.classifier.scoring import LabelScorer
from studio.data.prepare import PreparedData
from studio.errors import StudioError
from studio.evaluate import baselines
from studio.evaluate.metrics import disagreements, pr_curve, set_metrics
from studio.evaluate.verdicts import set_title, verdicts
from studio.models.loading import inference_autocast
from studio.runs.score_cache import cached_scores

MODES = ("score", "generate")
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
    sets: dict[str, SetScores]  # the fine-tuned LLM's (its probabilities through its own rule); probs None: the
    # run's first classifier, the classic model alone, while the LLM trains (studio.evaluate.first)
    untrained: dict[str, SetScores] | None = None  # the same base model without the adapter
    conflicts: list[dict] = field(default_factory=list)
    threshold: float | None = None  # the minority threshold set by hand (two classes)
    priors: dict | None = None  # {"train": [...], "natural": [...]}: the LLM's training mix and the natural one
    calibration: dict = field(default_factory=dict)
    references: dict | None = None  # the classic and majority models' figures (studio.evaluate.baselines)
    classic_model: object = None  # the classic model fitted on the run's training rows (a candidate)
    decision: choice.Decision | None = None  # the three candidates, their rules and the classifier in use
    out_of_scope: str | None = None  # the "none of these" class, where the labels have one (its reject rule)
    unsure: float | None = None  # where "unsure" may be answered: the accuracy the answered texts keep
    first: dict | None = None  # the run's first classifier (the classic model alone, the LLM training): its facts
    context: dict = field(default_factory=dict)  # facts beside the scores, in every report made from these scores:
    # notes, training, data, the classic model in use, and a test file's ``test_file`` name and ``set_names``

    @property
    def has_llm(self) -> bool:
        """Whether the fine-tuned LLM scored these sets (not yet for a run's first classifier)."""
        return any(s.probs is not None for s in self.sets.values())

    @property
    def temperature(self) -> float:
        """The LLM's temperature as its rule keeps it (1.0 where the held-out halves said it did not help)."""
        return self.decision.rules["llm"].temperature if self.decision and "llm" in self.decision.rules else 1.0

    def predictions(self, name: str, threshold: float | None = None, untrained: bool = False,
                    raw: bool = False) -> list[str]:
        """The LLM's labels on a set. The fine-tuned LLM's are its rule's decisions, the very ones of the
        candidates' table (Val A cross-fitted; a hand-set threshold as ``choice.takes_hand_threshold`` says); the
        untrained model's and the probabilities before correction (``raw``) take the most probable class, or a
        two-class run's ``threshold``."""
        scores = (self.untrained if untrained else self.sets)[name]
        if scores.generated is not None:
            return scores.generated
        minority = self.labels.index(self.minority)
        if self.decision and "llm" in self.decision.rules and not raw and not untrained:
            d = self.decision
            decided = d.outcome("llm", name).decided if name in ("val_a", "val_b") else \
                d.rule("llm").decide(scores.probs, minority, d.task.reject)
            return [label_of(self.labels, i) for i in decided]
        probs = scores.raw if raw and scores.raw is not None else scores.probs
        return [self.labels[i] for i in Rule("llm", threshold=threshold).decide(probs, minority)]

    def report(self, threshold: float | None = ..., max_disagreements: int = 200) -> dict:
        """JSON-ready metrics; ``threshold`` defaults to the one set by hand. ``val_a`` / ``val_b`` are the fine-tuned
        LLM's (as in earlier reports); ``candidates`` and ``chosen`` the three candidates and the classifier in use.
        The keys stay those of earlier reports: ``baseline`` is the untrained model, ``classic_baseline`` and
        ``majority_baseline`` the references."""
        t = self.threshold if threshold is ... else threshold
        if self.decision:
            self.decision.threshold = t if len(self.labels) == 2 else None
        out = {"mode": self.mode, "labels": self.labels, "codes": self.codes, "minority_label": self.minority,
               "threshold": t}
        llm_sets = self.sets if self.has_llm else {}
        for name, scores in llm_sets.items():
            out[name] = self._metrics(scores, self.predictions(name, t))
        out["invalid"] = sum(out[name]["invalid"] for name in llm_sets)
        if self.priors and self.mode == "score" and llm_sets:
            out["prior_correction"] = {"train": dict(zip(self.labels, self.priors["train"])),
                                       "natural": dict(zip(self.labels, self.priors["natural"])),
                                       "strength": self.decision.rules["llm"].prior_strength if self.decision else 1}
            out["without_prior_correction"] = {name: self._metrics(s, self.predictions(name, t, raw=True))
                                               for name, s in self.sets.items()}
        if self.untrained:
            out["baseline"] = {name: self._metrics(s, self.predictions(name, t, untrained=True))
                               for name, s in self.untrained.items()}
        if self.references:
            out["classic_baseline"] = self.references["classic"]
            out["majority_baseline"] = {**self.references["majority"], "label": self.references["majority_label"]}
        if self.decision:
            out.update(self._candidates())
            if self.decision.task.unsure:
                out["unsure"] = {"target": self.decision.task.unsure}
        if self.calibration:
            out["calibration"] = {**self.calibration, "temperature": self.temperature}
        if self.mode == "score":
            out["pr_curve"] = {name: pr_curve(list(s.frame["label"]), s.probs, self.labels, self.minority)
                               for name, s in llm_sets.items()}
        if self.first:
            out["first"] = self.first
        out.update(self.context)
        if self.context.get("test_file") and "calibration" in out:
            name = self.context["test_file"]
            out["calibration"] = {**out["calibration"], "on": name, "fitted_on": f"the run's own Val A: its rule "
                                  f"applied to {name}, nothing fitted on these rows"}
        out["verdicts"] = verdicts(out)
        table = self.disagreements(t)
        out["disagreements_total"] = len(table)
        out["disagreements"] = table.head(max_disagreements).to_dict("records")
        out["conflicts"] = self.conflicts
        return out

    def _candidates(self) -> dict:
        """``candidates``: each one's cross-fitted Val A, its Val B and its rule; ``chosen``: the classifier in use,
        with the figures behind the choice and why."""
        d = self.decision
        truth = {name: list(self.sets[name].frame["label"]) for name in ("val_a", "val_b")}

        def figures(candidate: str) -> dict:
            return {on: set_metrics(truth[on], [label_of(self.labels, i) for i in d.outcome(candidate, on).decided],
                                    self.labels, self.minority, self.out_of_scope) for on in ("val_a", "val_b")}

        candidates = {n: {**figures(n), "rule": d.rule(n).to_dict(), "rule_words": d.rule(n).words()}
                      for n in d.rules}
        chosen = figures("chosen" if not d.overridden else d.use)
        return {"candidates": candidates,
                "chosen": {"name": d.use, "auto": d.auto, "override": d.use if d.overridden else None, **chosen,
                           "why": d.why(), "rule": d.rule().to_dict()}}

    def _metrics(self, scores: SetScores, predicted: list[str]) -> dict:
        return set_metrics(list(scores.frame["label"]), predicted, self.labels, self.minority, self.out_of_scope)

    def disagreements(self, threshold: float | None = ...) -> pd.DataFrame:
        """Label-noise candidates, most confident first, judged by the model as trained (before the correction to
        the natural class mix, which would favour the majority label over a minority text's own label)."""
        t = self.threshold if threshold is ... else threshold
        if not self.has_llm:  # the first classifier: the classic model's own disagreements
            probs = (self.references or {}).get("probs", {})
            parts = [disagreements(s.frame, probs[name], [self.labels[i] for i in probs[name].argmax(axis=1)],
                                   self.labels, set_title(self.context, name))
                     for name, s in self.sets.items() if name in probs]
        else:
            parts = [disagreements(s.frame, s.raw if s.raw is not None else s.probs,
                                   self.predictions(name, t, raw=True), self.labels, set_title(self.context, name))
                     for name, s in self.sets.items()]
        merged = pd.concat(parts, ignore_index=True)
        return merged.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)

    def decision_record(self) -> dict:
        """What the run record keeps of the decision; a first classifier's also says what a classifier needs that an
        adapter card says once the LLM is trained: the labels, their codes, the rubric."""
        record = self.decision.to_record()
        if self.first:
            record.update(first=self.first, labels=self.labels, codes=self.codes)
        return record

    def replay(self, record: dict, where: str) -> None:
        """A run's saved decision applied to these sets (another labelled file): nothing is fitted on them."""
        sources, y = self._sources()
        self.decision = choice.replay(record, sources["val_a"], y, sources["val_b"], where,
                                      threshold=self.threshold if len(self.labels) == 2 else None)
        self._follow_llm_rule(sources, y)

    def _sources(self) -> tuple[dict, np.ndarray]:
        for scores in self.sets.values():
            if scores.raw is None:
                scores.raw = scores.probs
        classic_probs = (self.references or {}).get("probs", {})
        sources = {name: Sources(self.sets[name].raw, classic_probs.get(name)) for name in self.sets}
        y = np.array([self.labels.index(lb) for lb in self.sets["val_a"].frame["label"]])
        return sources, y

    def _follow_llm_rule(self, sources: dict, y: np.ndarray) -> None:
        """The LLM's probabilities as its rule makes them; its calibration report."""
        d = self.decision
        if "llm" not in d.rules:  # the first classifier: no LLM yet
            return
        self.sets["val_a"].probs = d.val_a["llm"].probs
        self.sets["val_b"].probs = d.val_b["llm"].probs
        if "train" in self.sets:
            self.sets["train"].probs = d.rules["llm"].probabilities(sources["train"], d.task)
        self.calibration = calibration_report(self.sets["val_a"].raw, self.sets["val_a"].probs, y, d.rules["llm"])

    def decide(self, use: str | None = None, seed: int = 3407) -> None:
        """The candidates' rules fitted on Val A, their honest figures, the choice (``use``: the user's override);
        the LLM's probabilities then follow its own rule (cross-fitted on Val A)."""
        val_a = self.sets.get("val_a")
        if val_a is None or not len(val_a.frame):
            return
        sources, y = self._sources()
        task = task_for(self.labels, self.minority, self.priors, self.out_of_scope, self.unsure)
        self.decision = choice.decide(sources["val_a"], y, sources["val_b"], task, use=use, seed=seed)
        self._follow_llm_rule(sources, y)


def task_for(labels: list[str], minority: str, priors: dict | None, out_of_scope: str | None = None,
             unsure: float | None = None) -> Task:
    """The class mixes the rules correct between: the natural one (the training rows before balancing), the LLM's
    (after), and the classic model's (uniform: it weighs the classes as if balanced); the out-of-scope class, or
    the accuracy kept where "unsure" may be answered (``PreparedData.unsure``: never both)."""
    k = len(labels)
    natural = list(priors["natural"]) if priors else [1 / k] * k
    llm = list(priors["train"]) if priors else natural
    return Task(natural=natural, llm_train=llm, classic_train=[1 / k] * k, minority=labels.index(minority),
                reject=labels.index(out_of_scope) if out_of_scope in labels else None, unsure=unsure)


def calibration_report(raw: np.ndarray, held_out: np.ndarray, y: np.ndarray, rule: Rule) -> dict:
    """The LLM's calibration on Val A: its own probabilities against its rule's, cross-fitted (each half by a rule
    fitted on the other)."""
    report = {"fitted_on": f"Val A, 2-fold cross-fitted ({len(y)} rows): each half is decided by a rule fitted on the "
                           "other half", "before": reliability(raw, y), "after": reliability(held_out, y),
              "applied": {"prior_correction": rule.prior_strength, "temperature": rule.temperature,
                          "threshold": rule.threshold}}
    if rule.threshold is not None:
        report["threshold"] = {"suggested": rule.threshold}
    return report


def make_scorer(model, tokenizer, prepared: PreparedData, batch_size: int | None = None,
                reuse_prefix: bool | None = None, fast: bool = False) -> LabelScorer:
    """``fast``: bfloat16 compute on a CPU that has it, for the live evaluations during training only: its results
    move with the batch's shape (up to 0.06 in probability), so every probability that is reported, fits a rule or
    is delivered is computed in the weights' own dtype (docs/benchmarks.md, "Same text, same probability")."""
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
                progress(f"Scoring {SET_TITLES[name]}{what}: {done} of {total} rows", done / max(1, total))

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
                   priors: dict | None = ..., base_key: str | None = None, reference_rows: pd.DataFrame | None = None,
                   classic_model=None, use: str | None = None, decide: bool = True, progress=None) -> Evaluation:
    """Score Val A and Val B (and optionally the un-oversampled training rows) with the model as it is; fit the
    classic model on the training rows (or use ``classic_model``); decide the three candidates' rules and the
    classifier in use (``use``: an override) on Val A (``priors``: the LLM's training and natural mix, default from
    the prepared counts; ``decide`` False: leave the rules to ``Evaluation.replay``); the untrained model (its scores
    cached under ``base_key``, the base model's identity) and the majority label beside them. ``reference_rows``:
    the training rows of the classic and majority models (default: the prepared training rows); ``classic_model``
    may be a ``Future`` of (that model, another) fitting alongside the scoring."""
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
        progress("Classic model, the three candidates and the metrics", 1.0)
    minority = prepared.table.minority_label
    evaluation = Evaluation(labels=prepared.labels, codes=prepared.codes, minority=minority, mode=mode, sets=sets,
                            untrained=before, conflicts=prepared.table.conflicts, threshold=threshold,
                            out_of_scope=prepared.out_of_scope, unsure=prepared.unsure,
                            priors=class_priors(prepared.counts(), prepared.labels) if priors is ... else priors)
    rows = prepared.split.train if reference_rows is None else reference_rows
    if isinstance(classic_model, Future):  # fitted while the LLM scored: (on the training rows, on every row)
        classic_model = classic_model.result()[0]
    if len(rows):
        found = baselines.baselines(rows, frames, prepared.labels, minority, model=classic_model,
                                    out_of_scope=prepared.out_of_scope)
        evaluation.classic_model = found.pop("model")
        evaluation.references = found
    if mode == "score" and decide:
        evaluation.decide(use)
    return evaluation
