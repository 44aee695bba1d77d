"""The best classifier wins, chosen honestly: three candidates for every run (the fine-tuned LLM, the classic model
fitted on the same training rows, and a blend of their calibrated probabilities), each with its rule
(``studio.classifier.rules``), and the choice among them.

The figures reported for Val A are cross-fitted: each half of Val A is decided by rules fitted on the other half (and
the chosen classifier's by a choice made on the other half too, from cross-fitting inside it); Val B is decided by
the rules fitted on all of Val A, never on Val B. The rules used from then on are fitted on all of Val A.

The choice: the best cross-fitted Val A macro-F1; a tie (within ``TIE``) goes to the simpler: classic, then LLM,
then blend (``studio.classifier.candidates``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from studio.classifier.calibration import halves
from studio.classifier.candidates import CANDIDATES, NAMES, TIE, macro_f1, simplest_best, tied_best
from studio.classifier.rules import Rule, Sources, Task, default_rule, fit_rule
from studio.text import first_up


@dataclass
class Outcome:
    """One candidate (or the chosen classifier) on a set of rows: its probabilities and decisions."""

    probs: np.ndarray
    decided: np.ndarray


def takes_hand_threshold(name: str, use: str) -> bool:
    """A two-class threshold set by hand decides the classifier in use, and the fine-tuned LLM, whose own exports
    (adapters, merged, GGUF) carry it in their adapter card."""
    return name in (use, "llm")


def applied(rule: Rule, sources: Sources, task: Task) -> Outcome:
    """A rule's probabilities and decisions for these rows: the one way from sources to labels."""
    probs = rule.probabilities(sources, task)
    return Outcome(probs, rule.decide(probs, task.minority, task.reject))


def cross_fitted(name: str | None, sources: Sources, y: np.ndarray, task: Task, seed: int = 3407) -> Outcome:
    """Every row decided by a rule fitted on the other half (``name`` None: the chosen classifier, its choice made
    on the other half as well)."""
    probs = np.full((len(y), len(task.natural)), np.nan)
    decided = np.full(len(y), -1)
    splits = halves(y, seed)
    if not splits:  # too few rows to hold any out: the rule as it is before fitting
        return applied(default_rule(name or next(c for c in ("llm", "classic") if sources.has(c))), sources, task)
    for fit_idx, apply_idx in splits:
        fit = sources.rows(fit_idx)
        chosen = name or choose(fit, y[fit_idx], task, seed)[0]
        outcome = applied(fit_rule(chosen, fit, y[fit_idx], task, seed), sources.rows(apply_idx), task)
        probs[apply_idx], decided[apply_idx] = outcome.probs, outcome.decided
    return Outcome(probs, decided)


def choose(sources: Sources, y: np.ndarray, task: Task, seed: int = 3407) -> tuple[str, dict[str, float]]:
    """(the candidate with the best cross-fitted macro-F1 on these rows, each candidate's figure); ties go to the
    simpler."""
    classes = len(task.natural)
    scores = {name: macro_f1(y, cross_fitted(name, sources, y, task, seed).decided, classes)
              for name in CANDIDATES if sources.has(name)}
    return simplest_best(scores), scores


@dataclass
class Decision:
    """The three candidates' rules (fitted on all of Val A), their honest figures, and the classifier in use."""

    task: Task
    rules: dict[str, Rule]
    auto: str  # the candidate the figures choose
    use: str  # the candidate in use: ``auto``, or the user's override
    scores: dict[str, float]  # each candidate's cross-fitted Val A macro-F1
    val_a: dict[str, Outcome]  # cross-fitted: each candidate's, and "chosen" (its choice cross-fitted too)
    val_b: dict[str, Outcome]  # the rules fitted on Val A, applied to Val B
    threshold: float | None = None  # set by hand (two classes): see ``takes_hand_threshold``
    where: str = "cross-fitted Val A"  # what the figures are: held-out halves of Val A, or another labelled file
    chosen_score: float | None = None  # cross-fitted Val A macro-F1 of choosing itself (each half chose for the other)

    @property
    def overridden(self) -> bool:
        return self.use != self.auto

    def rule(self, name: str | None = None) -> Rule:
        """A candidate's rule (default: the one in use), with the hand-set threshold where it applies."""
        name = name or self.use
        rule = self.rules[name]
        if self.threshold is not None and takes_hand_threshold(name, self.use):
            rule = Rule.from_dict({**rule.to_dict(), "threshold": self.threshold})
        return rule

    def outcome(self, name: str, on: str) -> Outcome:
        """A candidate's (or "chosen") probabilities and decisions on "val_a" or "val_b", the hand-set threshold
        applied where it applies."""
        outcome = (self.val_a if on == "val_a" else self.val_b)[name]
        candidate = self.use if name == "chosen" and not self.overridden else name
        if self.threshold is not None and candidate in self.rules and takes_hand_threshold(candidate, self.use):
            return Outcome(outcome.probs, self.rule(candidate).decide(outcome.probs, self.task.minority,
                                                                      self.task.reject))
        return outcome

    def why(self) -> str:
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        figures = ", ".join(f"{NAMES[n]} {s:.3f}" for n, s in ranked)
        best = max(self.scores.values())
        tied = tied_best(self.scores)
        if self.where != "cross-fitted Val A":  # another file: the rules and the choice come from the run's Val A
            said = (f"Macro-F1 {self.where}: {figures}; {NAMES[self.use]} is in use (chosen on the run's own Val A)")
        elif len(tied) == 1:
            said = f"{first_up(NAMES[self.auto])} has the best cross-fitted Val A macro-F1 ({figures})"
        else:
            said = (f"{first_up(' and '.join(NAMES[n] for n in tied))} tie on cross-fitted Val A macro-F1 "
                    f"({figures}); the simpler, {NAMES[self.auto]}, is chosen")
        said += f"; its rule: {self.rules[self.auto].words()}."
        if self.where == "cross-fitted Val A" and self.chosen_score is not None and self.chosen_score < best - TIE:
            said += (f" The choice is unsure on this Val A: its two halves picked differently, so choosing on "
                     f"held-out rows scores {self.chosen_score:.3f}; more validation rows (a larger file, or a "
                     f"larger Val A share) would settle it.")
        if self.overridden:
            said += f" In use by your choice: {NAMES[self.use]} ({self.rule().words()})."
        if self.threshold is not None:
            said += f" The minority threshold {self.threshold:.2f} was set by hand."
        return said

    def to_record(self) -> dict:
        """What the run record keeps: enough to decide new rows the same way, and the figures and words behind it."""
        return {"use": self.use, "auto": self.auto, "override": self.use if self.overridden else None,
                "threshold": self.threshold, "rules": {k: v.to_dict() for k, v in self.rules.items()},
                "scores": {k: round(v, 4) for k, v in self.scores.items()}, "why": self.why(),
                "task": asdict(self.task)}


def decide(val_a: Sources, y_a: np.ndarray, val_b: Sources, task: Task, *, use: str | None = None,
           threshold: float | None = None, seed: int = 3407) -> Decision:
    """Fit every available candidate's rule on Val A, cross-fit their figures, choose, and decide Val B."""
    names = [n for n in CANDIDATES if val_a.has(n)]
    outcomes = {n: cross_fitted(n, val_a, y_a, task, seed) for n in names}
    outcomes["chosen"] = cross_fitted(None, val_a, y_a, task, seed) if len(names) > 1 else outcomes[names[0]]
    classes = len(task.natural)
    scores = {n: macro_f1(y_a, outcomes[n].decided, classes) for n in names}
    auto = simplest_best(scores)
    rules = {n: fit_rule(n, val_a, y_a, task, seed) for n in names}
    if use is not None and use not in rules:
        raise ValueError(f"{use} is not a candidate here ({', '.join(names)})")
    in_use = use or auto
    on_b = {n: applied(rules[n], val_b, task) for n in names}
    on_b["chosen"] = on_b[in_use]
    return Decision(task, rules, auto, in_use, scores, outcomes, on_b, threshold,
                    chosen_score=macro_f1(y_a, outcomes["chosen"].decided, classes))


def replay(record: dict, val_a: Sources, y_a: np.ndarray, val_b: Sources, where: str,
           threshold: float | None = None) -> Decision:
    """A run's saved rules and choice (``Decision.to_record``) applied to another labelled file: nothing is fitted
    on it, so its figures are held out as they stand."""
    task = Task(**record["task"])
    rules = {n: Rule.from_dict(d) for n, d in record["rules"].items() if val_a.has(n)}
    outcomes = {on: {n: applied(rule, sources, task) for n, rule in rules.items()}
                for on, sources in (("val_a", val_a), ("val_b", val_b))}
    use = record["use"] if record["use"] in rules else next(iter(rules))
    for on in outcomes:
        outcomes[on]["chosen"] = outcomes[on][use]
    scores = {n: macro_f1(y_a, outcomes["val_a"][n].decided, len(task.natural)) for n in rules}
    auto = record["auto"] if record["auto"] in rules else use
    return Decision(task, rules, auto, use, scores, outcomes["val_a"], outcomes["val_b"], threshold, where)


def in_use(record: dict | None, use: str | None = None) -> tuple[Rule, Task] | None:
    """The rule of the classifier in use from a run's saved decision (``use``: another candidate for this call),
    with the hand-set threshold; None when the run was never evaluated."""
    if not record:
        return None
    name = use or record["use"]
    if name not in record["rules"]:
        raise ValueError(f"{name} was not a candidate of this run ({', '.join(record['rules'])})")
    rule = Rule.from_dict(record["rules"][name])
    if record.get("threshold") is not None and takes_hand_threshold(name, record["use"]):
        rule.threshold = record["threshold"]
    return rule, Task(**record["task"])
