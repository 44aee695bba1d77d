"""How many optimizer steps a run trains, decided in one place: first from the rows and the settings; with a time
budget, from the speed measured on the run's own rows, so the learning-rate schedule ends when the time does; then,
as the run goes, where the pacer moves the end as the speed changes; a resumed run goes on with the budget it had
left, paced as it was."""

from __future__ import annotations

from studio.config import TrainSpec, total_steps
from studio.estimate.recipe import budget_steps
from studio.train.pacing import Pacer


class StepPlan:
    def __init__(self):
        self.steps: int | None = None  # the run's last step as planned now
        self.pacer: Pacer | None = None  # with a time budget: moves the last step as the measured speed changes

    def from_rows(self, train: TrainSpec, rows: int, processes: int) -> int:
        self.steps = total_steps(train, rows, processes)
        return self.steps

    def fit_budget(self, budget_s: float, step_s: float, eval_rows: int, score_s: float, eval_steps: int) -> int:
        """The steps (and their periodic evaluations: every ``eval_steps``, auto when negative, none when 0) that fit
        the budget at the measured ``step_s`` and ``score_s`` a row; returns the evaluations' interval. The trainer
        keeps its own last step (the epochs: the most the plan can reach); the pacer moves the run's end from here."""
        steps, every = budget_steps(budget_s, step_s, eval_rows, score_s, self.steps)
        if eval_steps >= 0:
            every = eval_steps
        self.pacer = Pacer(budget_s, self.steps, step_s, eval_rows * score_s, every if eval_steps else 0)
        self.steps = steps
        return every if eval_steps else 0

    def resume(self, budget_s: float, pace: dict, used_s: float) -> None:
        """A resumed run: the budget it had left, paced as it was (``pace``: the plan recorded when it started)."""
        self.pacer = Pacer(budget_s, self.steps, pace.get("step_s") or 1.0, pace.get("eval_s", 0.0),
                           pace.get("every", 0), used_s=used_s)

    def replanned(self, last: int) -> None:
        """The pacer moved the run's last step (the callback's ``on_replan``)."""
        self.steps = last
