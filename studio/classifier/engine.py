"""The classifier a run uses from now on: the candidate its evaluation chose (or the one the user picked), made of
the fine-tuned LLM's and/or the classic model's probabilities (the sources) through that candidate's rule
(``studio.classifier.rules``), into rows (``studio.classifier.rows``). A run not evaluated yet uses the fine-tuned
LLM with its adapter card's calibration (``card_rule``). A classifier bundle (``studio.classifier.bundle``) is read
the same way as the run it came from.

What each text needs is computed only where the rules need it, and once: a run whose classifier is the classic model
answers without loading the LLM, and the Playground's every candidate comes from one pass of each model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from studio.classifier import classic, choice
from studio.classifier.bundle import Bundle
from studio.classifier.candidates import CANDIDATES, NAMES
from studio.classifier.rows import predict_frame
from studio.classifier.rules import Rule, Sources, Task, card_rule
from studio.errors import StudioError
from studio.models.trained import load_run_model
from studio.runs.folder import RunDir


@dataclass
class RunClassifier:
    labels: list[str]
    codes: dict[str, str]
    use: str  # the candidate in use
    rule: Rule
    task: Task
    load_llm: Callable[[], tuple] | None = None  # () -> (model, tokenizer, adapter card), called once when needed
    classic_model: object = None
    rules: dict[str, Rule] = field(default_factory=dict)  # every candidate's rule (the one in use: ``rule``)
    load_classic: Callable[[], object] | None = None  # the classic model, when a candidate not in use needs it
    batch_size: int = 16
    _llm: tuple | None = field(default=None, repr=False)
    _scorer: object | None = field(default=None, repr=False)  # kept: its rubric's cache is built once, not per call
    _untrained: object | None = field(default=None, repr=False)  # the same for the base model, adapter off

    @classmethod
    def of_run(cls, run: RunDir | Bundle, use: str | None = None, loaded=None, log=print) -> "RunClassifier":
        """The classifier in use of a run or a bundle (``use``: another candidate, for this call only); ``loaded``:
        the LLM already in memory (model, tokenizer, card), or a function that gives it (called only if the rule
        needs the LLM)."""
        if use not in (None, "auto", *CANDIDATES):
            raise StudioError(f"--use takes llm, classic, blend or auto (got '{use}').")
        record = run.classifier()
        first = bool(record and record.get("first"))  # the classic model alone, while the LLM trains
        trained = run.has_adapter_card()
        # the first classifier names its labels and codes itself until the LLM's adapter card does
        card = run.adapter_card() if trained or not first else {"label_codes": record["codes"]}
        labels = list(card["label_codes"])
        if first and trained and use == "llm":
            record = None  # the LLM trained, not evaluated yet: read through its adapter card, as before
        try:
            saved = choice.in_use(record, None if use == "auto" else use)
        except ValueError as err:
            if first and not trained:
                raise StudioError(f"Run '{run.name}' has its first classifier only, the classic model: the fine-"
                                  f"tuned LLM is still training, and {NAMES[use]} comes once it is trained and "
                                  "evaluated.") from None
            raise StudioError(f"{err}: evaluate the run first (python -m studio eval RUN).") from None
        if saved is None:
            if use in ("classic", "blend"):
                raise StudioError(f"Run '{run.name}' has no {use} candidate yet: evaluate it first (python -m studio "
                                  "eval RUN), which fits the classic model and chooses among the three.")
            rule, task = card_rule(card, labels, run.minority_label(), run.threshold())
            rules = {"llm": rule}
        else:
            rule, task = saved
            rules = {name: rule if name == rule.candidate else choice.in_use(record, name)[0]
                     for name in record["rules"]}
        classic_model = run.load_classic() if _needs(rule, "classic") else None
        if _needs(rule, "classic") and classic_model is None:
            raise StudioError(f"'{run.name}' has lost its classic model (classic.skops): evaluate the run again, or "
                              "export the bundle again.")
        return cls(labels, dict(card["label_codes"]), rule.candidate, rule, task,
                   load_llm=loaded if callable(loaded) else (lambda: loaded) if loaded else
                   (lambda: load_run_model(run, log=log)),
                   classic_model=classic_model, rules=rules, load_classic=run.load_classic)

    @property
    def needs_llm(self) -> bool:
        """Whether the classifier in use answers with the LLM (a first classifier, the classic model, does not)."""
        return _needs(self.rule, "llm")

    def llm(self) -> tuple:
        """(model, tokenizer, adapter card), loaded at the first call."""
        if self._llm is None:
            self._llm = self.load_llm()
        return self._llm

    def sources(self, texts: list[str], rules: list[Rule] | None = None) -> Sources:
        """Each model's own probabilities for the texts, where one of the ``rules`` (default: the one in use)
        uses it: one pass of each model, whatever the number of rules."""
        rules = rules or [self.rule]
        llm = classic_probs = None
        if any(_needs(r, "llm") for r in rules):
            llm = self._llm_scorer().score(texts).probs
        if any(_needs(r, "classic") for r in rules):
            if self.classic_model is None and self.load_classic is not None:
                self.classic_model = self.load_classic()
            if self.classic_model is not None:
                classic_probs = classic.probabilities(self.classic_model, texts, self.labels)
        return Sources(llm, classic_probs)

    def _llm_scorer(self):
        if self._scorer is None:
            from studio.classifier.scoring import LabelScorer  # (torch: only where the LLM is used)

            model, tokenizer, card = self.llm()
            self._scorer = LabelScorer(model, tokenizer, card["label_codes"], card["rubric"], card["prompt_format"],
                                       batch_size=self.batch_size)
        return self._scorer

    def classify(self, texts: list[str]) -> choice.Outcome:
        """The classifier in use's probabilities and decisions for the texts."""
        return choice.applied(self.rule, self.sources(texts), self.task)

    def predict_frame(self, texts: list[str | None]) -> pd.DataFrame:
        """One row per text: predicted label and code, confidence, one probability per class, and a note (an empty
        text is not classified)."""
        return predict_frame(texts, self.labels, self.codes, lambda t: _pair(self.classify(t)))

    def every_candidate(self, texts: list[str]) -> dict[str, choice.Outcome]:
        """Each candidate's probabilities and decisions (its own rule; the one in use with its threshold), from one
        pass of each model over the texts; candidates whose model is missing are left out."""
        sources = self.sources(texts, list(self.rules.values()))
        return {name: choice.applied(rule, sources, self.task) for name, rule in self.rules.items()
                if all(sources.has(part) for part in _parts(rule))}

    def untrained_frame(self, texts: list[str | None], minority: str | None, threshold: float | None) -> pd.DataFrame:
        """The same base model with its adapter off, read through the adapter card's calibration: what training
        changed. Its scorer is its own (the rubric's cache of the adapted model is not the base model's), kept, and
        used with the adapter off only."""
        from studio.classifier.scoring import LabelScorer  # (torch: only where the LLM is used)

        model, tokenizer, card = self.llm()
        rule, task = card_rule(card, self.labels, minority, threshold)
        with model.disable_adapter():
            if self._untrained is None:
                self._untrained = LabelScorer(model, tokenizer, card["label_codes"], card["rubric"],
                                              card["prompt_format"], batch_size=self.batch_size)
            scorer = self._untrained
            return predict_frame(texts, self.labels, self.codes,
                                 lambda t: _pair(choice.applied(rule, Sources(scorer.score(t).probs, None), task)))


def _parts(rule: Rule) -> tuple[str, ...]:
    return ("llm", "classic") if rule.candidate == "blend" else (rule.candidate,)


def _needs(rule: Rule, model: str) -> bool:
    return model in _parts(rule)


def _pair(outcome: choice.Outcome) -> tuple[np.ndarray, np.ndarray]:
    return outcome.probs, outcome.decided
