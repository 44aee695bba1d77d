"""The best classifier wins, chosen honestly: three candidates for every run (the fine-tuned LLM, the classic model
fitted on the same training rows, and a blend of their calibrated probabilities), each with a decision rule, and
the choice among them.

A rule says how a candidate's probabilities become a decision: how far to correct them from its training mix to the
natural class mix (0, ½ or all the way), a temperature, for two classes a minority threshold, for the blend the
LLM's weight. Every part is fitted on held-out rows and kept only where those rows say it helps (macro-F1 for the
decisions, expected calibration error for the temperature). The figures reported for Val A are cross-fitted: each
half of Val A is decided by rules fitted on the other half (and the chosen classifier's by a choice made on the
other half too, from cross-fitting inside it); Val B is decided by the rules fitted on all of Val A, never on Val B.
The rules used from then on are fitted on all of Val A.

The choice: the best cross-fitted Val A macro-F1; a tie (within ``TIE``) goes to the simpler: classic, then LLM,
then blend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from studio.evaluate.calibration import fit_temperature, halves, prior_correct, reliability, with_temperature
from studio.text import first_up

CANDIDATES = ("classic", "llm", "blend")  # simplest first: a tie goes to the earlier
NAMES = {"classic": "the classic model", "llm": "the fine-tuned LLM", "blend": "the blend"}
TIE = 0.005  # macro-F1: closer than this is a tie
STRENGTHS = (0.0, 0.5, 1.0)  # how far to correct to the natural class mix
WEIGHTS = np.linspace(0.0, 1.0, 11)  # the blend's LLM share
MIN_ROWS = 8  # fewer held-out rows than this: parts are not fitted (the defaults stay)
EPS = 1e-12


@dataclass
class Sources:
    """What the candidates are made from, for some rows: each model's own probabilities (rows × classes)."""

    llm: np.ndarray | None
    classic: np.ndarray | None

    def rows(self, index) -> "Sources":
        return Sources(None if self.llm is None else self.llm[index],
                       None if self.classic is None else self.classic[index])

    def __len__(self) -> int:
        return len(self.llm if self.llm is not None else self.classic)

    def has(self, name: str) -> bool:
        return {"llm": self.llm is not None, "classic": self.classic is not None,
                "blend": self.llm is not None and self.classic is not None}[name]


@dataclass
class Task:
    """The class mixes the rules correct between, and which class is the minority (two-class thresholds)."""

    natural: list[float]  # class shares of the training rows before balancing
    llm_train: list[float]  # the mix the LLM trained on (after balancing)
    classic_train: list[float]  # the mix the classic model acts as trained on (balanced class weights: uniform)
    minority: int

    def train_prior(self, name: str) -> np.ndarray:
        return np.asarray(self.llm_train if name == "llm" else self.classic_train, dtype=float)


@dataclass
class Rule:
    candidate: str
    prior_strength: float = 0.0
    temperature: float = 1.0
    threshold: float | None = None  # two classes: the minority's threshold (None: the most probable class)
    weight: float | None = None  # blend: the LLM's share
    parts: dict = field(default_factory=dict)  # blend: the LLM's and the classic model's rules

    def probabilities(self, sources: Sources, task: Task) -> np.ndarray:
        if self.candidate == "blend":
            llm = self.parts["llm"].probabilities(sources, task)
            classic = self.parts["classic"].probabilities(sources, task)
            return self.weight * llm + (1 - self.weight) * classic
        probs = sources.llm if self.candidate == "llm" else sources.classic
        corrected = prior_correct(probs, task.train_prior(self.candidate), task.natural, self.prior_strength)
        return with_temperature(corrected, self.temperature)

    def decide(self, probs: np.ndarray, minority: int) -> np.ndarray:
        if self.threshold is None or probs.shape[1] != 2:
            return probs.argmax(axis=1)
        return np.where(probs[:, minority] >= self.threshold, minority, 1 - minority)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["parts"] = {k: v.to_dict() for k, v in self.parts.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Rule":
        parts = {k: cls.from_dict(v) for k, v in (data.get("parts") or {}).items()}
        return cls(**{**data, "parts": parts})

    def words(self) -> str:
        """What the rule does, in words."""
        said = []
        if self.candidate == "blend":
            said.append(f"{self.weight:.0%} the LLM's probabilities, {1 - self.weight:.0%} the classic model's")
        if self.prior_strength:
            said.append("corrected " + ("halfway " if self.prior_strength < 1 else "") + "to the natural class mix")
        if self.temperature != 1.0:
            said.append(f"temperature {self.temperature:.2f}")
        if self.threshold is not None:
            said.append(f"minority threshold {self.threshold:.2f}")
        return "; ".join(said) or "its probabilities as they are"


def default_rule(name: str) -> Rule:
    """A candidate's rule before anything is fitted: its probabilities as they are (a blend: half each)."""
    if name == "blend":
        return Rule("blend", weight=0.5, parts={"llm": Rule("llm"), "classic": Rule("classic")})
    return Rule(name)


def macro_f1(y: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """Macro-F1 over ``classes`` class indices (a class absent from both counts 0, as scikit-learn's
    ``zero_division=0``): the choice calls it thousands of times, so with numpy alone."""
    y, predicted = np.asarray(y, dtype=int), np.asarray(predicted, dtype=int)
    cm = np.bincount(y * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(cm)
    denominator = 2 * tp + (cm.sum(axis=0) - tp) + (cm.sum(axis=1) - tp)
    return float(np.mean(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)))


# ---- fitting ----------------------------------------------------------------------------------------------------
def fit_rule(name: str, sources: Sources, y: np.ndarray, task: Task, seed: int = 3407) -> Rule:
    """The rule for candidate ``name``, fitted on these rows (each part kept only where it helps)."""
    classes = len(task.natural)
    if name == "blend":
        parts = {k: fit_rule(k, sources, y, task, seed) for k in ("llm", "classic")}
        rule = Rule("blend", weight=1.0, parts=parts)
        q_llm, q_cls = parts["llm"].probabilities(sources, task), parts["classic"].probabilities(sources, task)
        losses = [log_loss(w * q_llm + (1 - w) * q_cls, y) for w in WEIGHTS]
        rule.weight = float(WEIGHTS[int(np.argmin(losses))])
    else:
        rule = Rule(name)
        if len(y) >= MIN_ROWS:
            rule.prior_strength = _best_strength(name, sources, y, task, classes)
            rule.temperature = _helpful_temperature(rule.probabilities(sources, task), y, seed)
    if classes == 2 and len(y) >= MIN_ROWS:
        rule.threshold = _helpful_threshold(rule, sources, y, task, seed)
    return rule


def _best_strength(name, sources: Sources, y, task: Task, classes: int) -> float:
    """How far to correct to the natural mix: the strength with the best macro-F1 here (none, unless one helps)."""
    probs = sources.llm if name == "llm" else sources.classic
    train, natural = task.train_prior(name), np.asarray(task.natural)
    scores = [macro_f1(y, prior_correct(probs, train, natural, s).argmax(axis=1), classes) for s in STRENGTHS]
    best = int(np.argmax(scores))
    return STRENGTHS[best] if scores[best] > scores[0] + TIE else 0.0


def _helpful_temperature(probs: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The likelihood's temperature, kept only when, fitted on one half, it lowers the other half's calibration
    error (both ways)."""
    before, after = [], []
    for fit_idx, apply_idx in halves(y, seed):
        t = fit_temperature(probs[fit_idx], y[fit_idx])
        before.append(reliability(probs[apply_idx], y[apply_idx])["ece"])
        after.append(reliability(with_temperature(probs[apply_idx], t), y[apply_idx])["ece"])
    if not before or np.mean(after) >= np.mean(before):
        return 1.0
    return fit_temperature(probs, y)


def _helpful_threshold(rule: Rule, sources: Sources, y, task: Task, seed: int) -> float | None:
    """The minority threshold with the best macro-F1 here, kept only when, chosen on one half, it beats the most
    probable class on the other half (both ways)."""
    probs, k = rule.probabilities(sources, task), task.minority
    with_t, without = [], []
    for fit_idx, apply_idx in halves(y, seed):
        t = best_threshold(probs[fit_idx, k], y[fit_idx] == k)
        chosen = probs[apply_idx].argmax(axis=1) if t is None else \
            np.where(probs[apply_idx, k] >= t, k, 1 - k)
        with_t.append(macro_f1(y[apply_idx], chosen, 2))
        without.append(macro_f1(y[apply_idx], probs[apply_idx].argmax(axis=1), 2))
    if not with_t or np.mean(with_t) <= np.mean(without) + TIE:
        return None
    return best_threshold(probs[:, k], y == k)


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """The minority threshold with the best macro-F1 (the choice's measure), every candidate threshold at once;
    None when the rows cannot tell."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return None
    candidates = np.unique(np.clip(scores, 0.01, 0.99))
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    tp = len(pos) - np.searchsorted(pos, candidates, side="left")  # positives at or above each threshold
    fp = len(neg) - np.searchsorted(neg, candidates, side="left")
    fn, tn = len(pos) - tp, len(neg) - fp
    f1_pos = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    f1_neg = 2 * tn / np.maximum(2 * tn + fn + fp, 1)
    return float(candidates[int(np.argmax(f1_pos + f1_neg))])


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(y)), y], EPS))))


# ---- the honest figures and the choice ---------------------------------------------------------------------------
@dataclass
class Outcome:
    """One candidate (or the chosen classifier) on a set of rows: its probabilities and decisions."""

    probs: np.ndarray
    decided: np.ndarray


def cross_fitted(name: str | None, sources: Sources, y: np.ndarray, task: Task, seed: int = 3407) -> Outcome:
    """Every row decided by a rule fitted on the other half (``name`` None: the chosen classifier, its choice made
    on the other half as well)."""
    probs = np.full((len(y), len(task.natural)), np.nan)
    decided = np.full(len(y), -1)
    splits = halves(y, seed)
    if not splits:  # too few rows to hold any out: the rule as it is before fitting
        rule = default_rule(name or next(c for c in ("llm", "classic") if sources.has(c)))
        p = rule.probabilities(sources, task)
        return Outcome(p, p.argmax(axis=1))
    for fit_idx, apply_idx in splits:
        fit = sources.rows(fit_idx)
        chosen = name or choose(fit, y[fit_idx], task, seed)[0]
        rule = fit_rule(chosen, fit, y[fit_idx], task, seed)
        probs[apply_idx] = rule.probabilities(sources.rows(apply_idx), task)
        decided[apply_idx] = rule.decide(probs[apply_idx], task.minority)
    return Outcome(probs, decided)


def choose(sources: Sources, y: np.ndarray, task: Task, seed: int = 3407) -> tuple[str, dict[str, float]]:
    """(the candidate with the best cross-fitted macro-F1 on these rows, each candidate's figure); ties go to the
    simpler."""
    classes = len(task.natural)
    scores = {name: macro_f1(y, cross_fitted(name, sources, y, task, seed).decided, classes)
              for name in CANDIDATES if sources.has(name)}
    best = max(scores.values())
    return next(name for name in CANDIDATES if name in scores and scores[name] >= best - TIE), scores


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
    threshold: float | None = None  # set by hand (two classes): replaces the rule's of the classifier in use
    where: str = "cross-fitted Val A"  # what the figures are: held-out halves of Val A, or another labelled file
    chosen_score: float | None = None  # cross-fitted Val A macro-F1 of choosing itself (each half chose for the other)

    @property
    def overridden(self) -> bool:
        return self.use != self.auto

    def rule(self, name: str | None = None) -> Rule:
        """A candidate's rule (default: the one in use), with the hand-set threshold on the one in use."""
        name = name or self.use
        rule = self.rules[name]
        if name == self.use and self.threshold is not None:
            rule = Rule.from_dict({**rule.to_dict(), "threshold": self.threshold})
        return rule

    def outcome(self, name: str, on: str) -> Outcome:
        """A candidate's (or "chosen") probabilities and decisions on "val_a" or "val_b", the hand-set threshold
        applied to the classifier in use."""
        outcome = (self.val_a if on == "val_a" else self.val_b)[name]
        in_use = name == self.use or (name == "chosen" and not self.overridden)
        if in_use and self.threshold is not None:
            return Outcome(outcome.probs, self.rule(self.use).decide(outcome.probs, self.task.minority))
        return outcome

    def why(self) -> str:
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        figures = ", ".join(f"{NAMES[n]} {s:.3f}" for n, s in ranked)
        best = max(self.scores.values())
        tied = [n for n in CANDIDATES if n in self.scores and self.scores[n] >= best - TIE]
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
    best = max(scores.values())
    auto = next(n for n in CANDIDATES if n in scores and scores[n] >= best - TIE)
    rules = {n: fit_rule(n, val_a, y_a, task, seed) for n in names}
    if use is not None and use not in rules:
        raise ValueError(f"{use} is not a candidate here ({', '.join(names)})")
    in_use = use or auto
    on_b = {}
    for n in names:
        probs = rules[n].probabilities(val_b, task)
        on_b[n] = Outcome(probs, rules[n].decide(probs, task.minority))
    on_b["chosen"] = on_b[in_use]
    return Decision(task, rules, auto, in_use, scores, outcomes, on_b, threshold,
                    chosen_score=macro_f1(y_a, outcomes["chosen"].decided, classes))


def replay(record: dict, val_a: Sources, y_a: np.ndarray, val_b: Sources, where: str,
           threshold: float | None = None) -> Decision:
    """A run's saved rules and choice (``Decision.to_record``) applied to another labelled file: nothing is fitted
    on it, so its figures are held out as they stand."""
    task = Task(**record["task"])
    rules = {n: Rule.from_dict(d) for n, d in record["rules"].items() if val_a.has(n)}
    outcomes = {}
    for on, sources in (("val_a", val_a), ("val_b", val_b)):
        outcomes[on] = {}
        for n, rule in rules.items():
            probs = rule.probabilities(sources, task)
            outcomes[on][n] = Outcome(probs, rule.decide(probs, task.minority))
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
    if record.get("threshold") is not None and name == record["use"]:
        rule.threshold = record["threshold"]
    return rule, Task(**record["task"])
