"""The best classifier wins, chosen honestly: the classic model where it is better, the LLM where it is, the blend
against numbers worked out by hand, an override, and no reported figure decided by a rule fitted on its own row."""

import numpy as np
import pytest

from studio.classifier import choice
from studio.classifier.candidates import macro_f1
from studio.classifier.choice import cross_fitted, decide
from studio.classifier.rules import Rule, Sources, Task, fit_rule, log_loss

TASK = Task(natural=[0.8, 0.2], llm_train=[0.6, 0.4], classic_train=[0.5, 0.5], minority=1)


def two_class(n: int, seed: int, llm_noise: float, classic_noise: float):
    """Labels 80/20, and two models whose probabilities follow the truth through noise of their own."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)

    def model(noise):
        score = np.clip(0.5 + (y - 0.5) * 0.8 + rng.normal(0, noise, n), 0.01, 0.99)
        return np.column_stack([1 - score, score])

    return y, model(llm_noise), model(classic_noise)


def test_the_classic_model_wins_where_it_is_better():
    y, llm, classic = two_class(600, 0, llm_noise=0.9, classic_noise=0.2)
    decision = decide(Sources(llm[:400], classic[:400]), y[:400], Sources(llm[400:], classic[400:]), TASK)
    assert decision.auto == decision.use == "classic"
    assert decision.scores["classic"] > decision.scores["llm"] + 0.1
    assert "classic model" in decision.why()


def test_the_llm_wins_where_it_is_better():
    y, llm, classic = two_class(600, 1, llm_noise=0.2, classic_noise=0.9)
    decision = decide(Sources(llm[:400], classic[:400]), y[:400], Sources(llm[400:], classic[400:]), TASK)
    assert decision.auto in ("llm", "blend") and decision.scores["llm"] > decision.scores["classic"] + 0.1
    if decision.auto == "blend":  # the blend may only win by more than a tie, else the simpler LLM is chosen
        assert decision.scores["blend"] > decision.scores["llm"] + choice.TIE


def test_a_tie_goes_to_the_simpler_candidate():
    y, llm, _ = two_class(400, 2, llm_noise=0.3, classic_noise=0.3)
    decision = decide(Sources(llm, llm.copy()), y, Sources(llm[:10], llm[:10]), TASK)  # the same model twice
    assert decision.auto == "classic" and "tie" in decision.why()


def test_the_blend_against_numbers_worked_out_by_hand():
    llm = np.array([[0.9, 0.1], [0.2, 0.8]])
    classic = np.array([[0.6, 0.4], [0.7, 0.3]])
    rule = Rule("blend", weight=0.25, parts={"llm": Rule("llm"), "classic": Rule("classic")})
    probs = rule.probabilities(Sources(llm, classic), TASK)
    # 0.25 · 0.9 + 0.75 · 0.6 = 0.675; 0.25 · 0.2 + 0.75 · 0.7 = 0.575
    assert np.allclose(probs, [[0.675, 0.325], [0.575, 0.425]])
    assert list(rule.decide(probs, 1)) == [0, 0]
    rule.threshold = 0.4  # the minority (index 1) from 0.4 up
    assert list(rule.decide(probs, 1)) == [0, 1]
    # The weight is the one of the grid with the least log-loss on the rows it is fitted on.
    y, llm, classic = two_class(300, 3, llm_noise=0.4, classic_noise=0.5)
    fitted = fit_rule("blend", Sources(llm, classic), y, TASK)
    q_llm = fitted.parts["llm"].probabilities(Sources(llm, classic), TASK)
    q_cls = fitted.parts["classic"].probabilities(Sources(llm, classic), TASK)
    losses = {w: log_loss(w * q_llm + (1 - w) * q_cls, y) for w in np.linspace(0, 1, 11)}
    assert fitted.weight == pytest.approx(min(losses, key=losses.get))


def test_the_prior_correction_is_kept_only_where_it_helps():
    y, llm, classic = two_class(400, 4, llm_noise=0.3, classic_noise=0.3)
    over = llm.copy()
    over[:, 1] = np.clip(over[:, 1] + 0.3, 0, 0.99)  # a model that over-predicts the minority (trained on 50/50)
    over[:, 0] = 1 - over[:, 1]
    task = Task(natural=[0.8, 0.2], llm_train=[0.5, 0.5], classic_train=[0.5, 0.5], minority=1)
    assert fit_rule("llm", Sources(over, classic), y, task).prior_strength > 0
    neutral = Task(natural=[0.5, 0.5], llm_train=[0.5, 0.5], classic_train=[0.5, 0.5], minority=1)
    assert fit_rule("llm", Sources(llm, classic), y, neutral).prior_strength == 0  # nothing to correct


def test_the_override_uses_another_candidate_and_keeps_the_figures():
    y, llm, classic = two_class(500, 5, llm_noise=0.9, classic_noise=0.2)
    auto = decide(Sources(llm, classic), y, Sources(llm[:50], classic[:50]), TASK)
    chosen = decide(Sources(llm, classic), y, Sources(llm[:50], classic[:50]), TASK, use="llm")
    assert auto.use == "classic" and chosen.use == "llm" and chosen.auto == "classic" and chosen.overridden
    assert chosen.scores == auto.scores
    assert "your choice" in chosen.why() and chosen.to_record()["override"] == "llm"
    assert np.array_equal(chosen.val_b["chosen"].decided, chosen.val_b["llm"].decided)


class Tagged(Sources):
    """Sources that remember which rows they hold."""

    def __init__(self, llm, classic, ids):
        super().__init__(llm, classic)
        self.ids = np.asarray(ids)

    def rows(self, index):
        return Tagged(self.llm[index], self.classic[index], self.ids[index])


def test_no_reported_row_is_decided_by_a_rule_fitted_on_it(monkeypatch):
    """Every rule (and every choice among the candidates) that decides a row of the reported figures was fitted on
    other rows: the outer halves are watched while the rules are fitted."""
    y, llm, classic = two_class(200, 6, llm_noise=0.4, classic_noise=0.4)
    held_out: set[int] = set()
    leaks = []
    real_halves, real_fit = choice.halves, choice.fit_rule

    def watched_halves(labels, seed):
        splits = real_halves(labels, seed)
        if len(labels) != len(y):
            return splits
        return _watched(splits)

    def _watched(splits):
        for fit_idx, apply_idx in splits:
            held_out.clear()
            held_out.update(apply_idx.tolist())
            yield fit_idx, apply_idx
        held_out.clear()

    def watched_fit(name, sources, labels, task, seed=3407):
        if held_out & set(sources.ids.tolist()):
            leaks.append(name)
        return real_fit(name, sources, labels, task, seed)

    monkeypatch.setattr(choice, "halves", watched_halves)
    monkeypatch.setattr(choice, "fit_rule", watched_fit)
    for name in (None, "llm", "classic", "blend"):  # the chosen classifier's figure and each candidate's
        outcome = cross_fitted(name, Tagged(llm, classic, np.arange(len(y))), y, TASK)
        assert (outcome.decided >= 0).all()
    assert not leaks


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(7)
    y, predicted = rng.integers(0, 4, 300), rng.integers(0, 3, 300)  # class 3 is never predicted
    assert macro_f1(y, predicted, 4) == pytest.approx(f1_score(y, predicted, labels=[0, 1, 2, 3], average="macro",
                                                               zero_division=0))


def test_halves_that_choose_differently_are_said_to_be_unsure():
    """Where each half of Val A would pick the classifier that is worse on the other half, choosing scores below
    every candidate's own figure, and the why says the choice is unsure; a clear choice says nothing of the kind."""
    from studio.classifier.calibration import halves

    y, good, bad = two_class(400, 6, llm_noise=0.05, classic_noise=2.0)
    (first, second), _ = halves(y, 3407)
    llm, classic = good.copy(), bad.copy()
    llm[second], classic[second] = bad[second], good[second]  # the LLM is right on one half, the classic on the other
    unsure = decide(Sources(llm, classic), y, Sources(llm[:10], classic[:10]), TASK)
    assert unsure.chosen_score < min(unsure.scores["llm"], unsure.scores["classic"])
    assert "unsure" in unsure.why() and f"{unsure.chosen_score:.3f}" in unsure.why()
    y, llm, classic = two_class(600, 0, llm_noise=0.9, classic_noise=0.2)
    clear = decide(Sources(llm, classic), y, Sources(llm[:10], classic[:10]), TASK)
    assert "unsure" not in clear.why()
