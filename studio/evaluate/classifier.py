"""The classifier a run uses from now on: the candidate its evaluation chose (or the one the user picked), made of
the fine-tuned LLM's and/or the classic model's probabilities through that candidate's rule (``studio.evaluate.
choice``). A run not evaluated yet uses the fine-tuned LLM with its adapter card's calibration. A classifier bundle
(``studio.runs.bundle``) is read the same way as the run it came from.

What each text needs is computed only where the rule needs it: a run whose classifier is the classic model answers
without loading the LLM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from studio.errors import StudioError
from studio.evaluate import classic, choice
from studio.models.loading import inference_autocast
from studio.models.trained import load_run_model
from studio.runs.bundle import Bundle
from studio.runs.folder import RunDir

USES = ("llm", "classic", "blend")


@dataclass
class RunClassifier:
    labels: list[str]
    codes: dict[str, str]
    use: str  # the candidate in use
    rule: choice.Rule
    task: choice.Task
    load_llm: Callable[[], tuple] | None = None  # () -> (model, tokenizer, adapter card), called once when needed
    classic_model: object = None
    batch_size: int = 16
    _llm: tuple | None = field(default=None, repr=False)
    _scorer: object | None = field(default=None, repr=False)  # kept: its rubric's cache is built once, not per call

    @classmethod
    def of_run(cls, run: RunDir | Bundle, use: str | None = None, loaded=None, log=print) -> "RunClassifier":
        """The classifier in use of a run or a bundle (``use``: another candidate, for this call only); ``loaded``:
        the LLM already in memory (model, tokenizer, card), or a function that gives it (called only if the rule
        needs the LLM)."""
        if use not in (None, "auto", *USES):
            raise StudioError(f"--use takes llm, classic, blend or auto (got '{use}').")
        card = run.adapter_card()
        labels = list(card["label_codes"])
        try:
            saved = choice.in_use(run.classifier(), None if use == "auto" else use)
        except ValueError as err:
            raise StudioError(f"{err}: evaluate the run first (python -m studio eval RUN).") from None
        if saved is None:
            if use in ("classic", "blend"):
                raise StudioError(f"Run '{run.name}' has no {use} candidate yet: evaluate it first (python -m studio "
                                  "eval RUN), which fits the classic model and chooses among the three.")
            rule, task = llm_rule_of(card, labels, run.minority_label(), run.threshold())
        else:
            rule, task = saved
        classic_model = run.load_classic() if rule.candidate in ("classic", "blend") else None
        if rule.candidate in ("classic", "blend") and classic_model is None:
            raise StudioError(f"'{run.name}' has lost its classic model (classic.skops): evaluate the run again, or "
                              "export the bundle again.")
        return cls(labels, dict(card["label_codes"]), rule.candidate, rule, task,
                   load_llm=loaded if callable(loaded) else (lambda: loaded) if loaded else
                   (lambda: load_run_model(run, log=log)),
                   classic_model=classic_model)

    @property
    def needs_llm(self) -> bool:
        return self.rule.candidate in ("llm", "blend")

    def sources(self, texts: list[str]) -> choice.Sources:
        """Each model's own probabilities for the texts, where the rule uses it."""
        llm = classic_probs = None
        if self.needs_llm:
            from studio.evaluate.scoring import LabelScorer  # (torch: only where the LLM is used)

            if self._scorer is None:
                if self._llm is None:
                    self._llm = self.load_llm()
                model, tokenizer, card = self._llm
                self._scorer = LabelScorer(model, tokenizer, card["label_codes"], card["rubric"],
                                           card["prompt_format"], batch_size=self.batch_size,
                                           autocast=inference_autocast(model.device.type))
            llm = self._scorer.score(texts).probs
        if self.classic_model is not None:
            classic_probs = classic.probabilities(self.classic_model, texts, self.labels)
        return choice.Sources(llm, classic_probs)

    def probabilities(self, texts: list[str]) -> tuple[np.ndarray, choice.Sources]:
        sources = self.sources(texts)
        return self.rule.probabilities(sources, self.task), sources

    def predict_frame(self, texts: list[str | None]) -> pd.DataFrame:
        """One row per text: predicted label and code, confidence, one probability per class, and a note (an empty
        text is not classified)."""
        present = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
        probs = np.full((len(texts), len(self.labels)), np.nan)
        predicted: list[str | None] = [None] * len(texts)
        if present:
            chosen, _ = self.probabilities([str(texts[i]).strip() for i in present])
            probs[present] = chosen
            for i, k in zip(present, self.rule.decide(chosen, self.task.minority)):
                predicted[i] = self.labels[k]
        out = pd.DataFrame({
            "predicted_label": predicted,
            "predicted_code": [self.codes[p] if p else None for p in predicted],
            "confidence": [None if p is None else round(float(probs[i, self.labels.index(p)]), 4)
                           for i, p in enumerate(predicted)],
        })
        for k, lb in enumerate(self.labels):
            out[f"p_{lb}"] = np.round(probs[:, k], 4)
        out["note"] = [None if p else "empty text: not classified" for p in predicted]
        return out


def llm_rule_of(card: dict, labels: list[str], minority: str | None, threshold: float | None):
    """The fine-tuned LLM as the adapter card calibrates it (a run evaluated before the candidates, or never)."""
    k = len(labels)
    prior = card.get("class_prior") or {}
    natural = list(prior.get("natural") or [1 / k] * k)
    task = choice.Task(natural=natural, llm_train=list(prior.get("train") or natural), classic_train=[1 / k] * k,
                       minority=labels.index(minority) if minority in labels else 0)
    strength = float(card.get("prior_strength", 1.0)) if prior else 0.0
    rule = choice.Rule("llm", prior_strength=strength, temperature=float(card.get("temperature") or 1.0),
                       threshold=threshold if k == 2 else None)
    return rule, task
