"""A candidate's rule: how its sources' probabilities become a decision. The sources are each model's own
probabilities for some rows (the fine-tuned LLM's, the classic model's); a rule corrects them from the model's
training mix toward the natural class mix (0, ½ or all the way), applies a temperature, for two classes a minority
threshold, for the blend the LLM's weight. Every part is fitted on held-out rows and kept only where those rows say
it helps (macro-F1 for the decisions, expected calibration error for the temperature): ``fit_rule``.

The adapter card's calibration (a run never evaluated, the LLM's own exports, the periodic evaluation, the label
folds) is a rule like the others: ``card_rule``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from studio.classifier.calibration import fit_temperature, halves, prior_correct, reliability, with_temperature
from studio.classifier.candidates import TIE, macro_f1

STRENGTHS = (0.0, 0.5, 1.0)  # how far to correct to the natural class mix
WEIGHTS = np.linspace(0.0, 1.0, 11)  # the blend's LLM share
MIN_ROWS = 8  # fewer held-out rows than this: parts are not fitted (the defaults stay)
MIN_REJECT_ROWS = 3  # out-of-scope rows needed to fit the reject rule
REJECT_BUDGET = 0.01  # in-scope accuracy the reject rule may give up on held-out rows to catch out-of-scope texts
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
    reject: int | None = None  # the out-of-scope class ("none of these"), where the labels have one
    unsure: float | None = None  # where "unsure" may be answered: the accuracy the answered texts keep (no reject)

    def train_prior(self, name: str) -> np.ndarray:
        return np.asarray(self.llm_train if name == "llm" else self.classic_train, dtype=float)


@dataclass
class Rule:
    candidate: str
    prior_strength: float = 0.0
    temperature: float = 1.0
    threshold: float | None = None  # two classes: the minority's threshold (None: the most probable class)
    weight: float | None = None  # blend: the LLM's share
    reject_below: float | None = None  # the out-of-scope class where no class reaches this probability
    unsure_below: float | None = None  # "unsure" where the answer's probability is under this (index: the classes)
    parts: dict = field(default_factory=dict)  # blend: the LLM's and the classic model's rules

    def probabilities(self, sources: Sources, task: Task) -> np.ndarray:
        if self.candidate == "blend":
            llm = self.parts["llm"].probabilities(sources, task)
            classic = self.parts["classic"].probabilities(sources, task)
            return self.weight * llm + (1 - self.weight) * classic
        probs = sources.llm if self.candidate == "llm" else sources.classic
        corrected = prior_correct(probs, task.train_prior(self.candidate), task.natural, self.prior_strength)
        return with_temperature(corrected, self.temperature)

    def decide(self, probs: np.ndarray, minority: int, reject: int | None = None) -> np.ndarray:
        """Class indices; ``probs.shape[1]`` (one past the classes) stands for "unsure" (``candidates.label_of``)."""
        if self.threshold is not None and probs.shape[1] == 2:
            decided = np.where(probs[:, minority] >= self.threshold, minority, 1 - minority)
        else:
            decided = probs.argmax(axis=1)
            if self.reject_below is not None and reject is not None:
                decided = np.where(probs.max(axis=1) < self.reject_below, reject, decided)
        if self.unsure_below is not None:
            decided = np.where(probs[np.arange(len(decided)), decided] < self.unsure_below, probs.shape[1], decided)
        return decided

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
        if self.reject_below is not None:
            said.append(f"out of scope when no class reaches {self.reject_below:.2f}")
        if self.unsure_below is not None:
            said.append(f"'unsure' when its answer's probability is under {self.unsure_below:.2f}")
        return "; ".join(said) or "its probabilities as they are"


def default_rule(name: str) -> Rule:
    """A candidate's rule before anything is fitted: its probabilities as they are (a blend: half each)."""
    if name == "blend":
        return Rule("blend", weight=0.5, parts={"llm": Rule("llm"), "classic": Rule("classic")})
    return Rule(name)


CARD_RULE_NOTE = ("Class probabilities p (softmax over the codes' summed log-probabilities) are used as "
                  "p * (natural / train) ** prior_strength (class_prior; then renormalised), then softened by the "
                  "temperature: softmax(log(p) / temperature). The threshold, if set, applies to the minority label's "
                  "result.")  # what ``card_rule`` does, in the words an export's notes carry


def card_rule(card: dict, labels: list[str], minority: str | None = None,
              threshold: float | None = None) -> tuple[Rule, Task]:
    """The fine-tuned LLM as its adapter card calibrates it (``class_prior``, ``prior_strength``: all the way on
    cards from before the rule was fitted, ``temperature``), with a two-class run's ``threshold``: the rule of a run
    not evaluated yet, of the LLM's own exports, of the periodic evaluation and of the label folds."""
    k = len(labels)
    prior = card.get("class_prior") or {}
    natural = list(prior.get("natural") or [1 / k] * k)
    task = Task(natural=natural, llm_train=list(prior.get("train") or natural), classic_train=[1 / k] * k,
                minority=labels.index(minority) if minority in labels else 0)
    strength = float(card.get("prior_strength", 1.0)) if prior else 0.0
    rule = Rule("llm", prior_strength=strength, temperature=float(card.get("temperature") or 1.0),
                threshold=threshold if k == 2 else None)
    return rule, task


# ---- fitting ----------------------------------------------------------------------------------------------------
def fit_rule(name: str, sources: Sources, y: np.ndarray, task: Task, seed: int = 3407) -> Rule:
    """The rule for candidate ``name``, fitted on these rows (each part kept only where it helps)."""
    classes = len(task.natural)
    if name == "blend":  # its parts only make probabilities: the blend's own rule decides
        parts = {k: fit_rule(k, sources, y, replace(task, unsure=None), seed) for k in ("llm", "classic")}
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
    if classes > 2 and task.reject is not None and len(y) >= MIN_ROWS:
        rule.reject_below = _helpful_reject(rule.probabilities(sources, task), y, task, seed)
    if task.unsure and task.reject is None and len(y) >= MIN_ROWS:
        probs = rule.probabilities(sources, task)
        rule.unsure_below = best_unsure(probs, rule.decide(probs, task.minority), y, task.unsure)
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


def _helpful_reject(probs: np.ndarray, y: np.ndarray, task: Task, seed: int) -> float | None:
    """The reject rule fitted on these rows, where they hold enough out-of-scope texts to tell (``best_reject``)."""
    if np.sum(y == task.reject) < MIN_REJECT_ROWS:
        return None
    return best_reject(probs, y, task.reject)


def best_reject(probs: np.ndarray, y: np.ndarray, reject: int, steps: int = 60) -> float | None:
    """The top-probability cut under which the out-of-scope class is answered: the one that catches the most
    out-of-scope texts while in-scope accuracy stays within ``REJECT_BUDGET`` of answering every text's most
    probable class. Not macro-F1, where the out-of-scope class is one of 150: it would never pay for itself. None when
    no cut catches more."""
    top, argmax, inside = probs.max(axis=1), probs.argmax(axis=1), y != reject
    if not inside.any() or inside.all():
        return None
    base_accuracy = np.mean(argmax[inside] == y[inside])
    best, best_recall = None, np.mean(argmax[~inside] == reject)
    for cut in np.unique(np.quantile(top, np.linspace(0.0, 0.8, steps))):
        decided = np.where(top < cut, reject, argmax)
        recall = np.mean(decided[~inside] == reject)
        if np.mean(decided[inside] == y[inside]) >= base_accuracy - REJECT_BUDGET and recall > best_recall:
            best, best_recall = float(cut), recall
    return best


def best_unsure(probs: np.ndarray, decided: np.ndarray, y: np.ndarray, target: float, steps: int = 60) -> float | None:
    """The lowest cut on the answer's probability under which "unsure" is answered, such that the texts still
    answered are right at least ``target`` of the time here (the fewest texts left unanswered for that accuracy).
    None when every answer already is, or when no cut gets there (the report says which)."""
    sure = probs[np.arange(len(y)), decided]
    if np.mean(decided == y) >= target:
        return None
    for cut in np.unique(np.quantile(sure, np.linspace(0.0, 0.95, steps))):
        answered = sure >= cut
        if answered.any() and np.mean(decided[answered] == y[answered]) >= target:
            return float(cut)
    return None


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
