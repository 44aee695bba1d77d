"""A time budget that is used, planned honestly: the steps are planned from two timed steps at the start, then
re-planned every few steps from the measured speed (the recent steps' seconds, the periodic evaluations' measured
cost), and the learning-rate schedule is stretched or shortened to end at the new last step. So a slow start (a busy
page, another process) neither shortens the run nor leaves the budget unused, and a run ends within a few percent of
its budget (docs/benchmarks.md, "Time budget").
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field

REPLAN_STEPS = 5  # steps between re-plans (every rank re-plans at the same steps: they must agree)
WINDOW_STEPS = 20  # the recent steps the speed is measured on
FINAL_EVAL = 1  # the evaluation at the last step


@dataclass
class Pacer:
    budget_s: float  # the whole budget, seconds of training and periodic evaluation
    limit: int  # the most steps the trainer can run (its epochs): the plan never goes past it
    step_s: float  # seconds per step, measured at the start (used until the run's own steps say more)
    eval_s: float = 0.0  # seconds per periodic evaluation, estimated at the start (until one is measured)
    every: int = 0  # steps between periodic evaluations (0: none)
    used_s: float = 0.0  # budget spent before this process started (a resumed run)
    _times: deque = field(default_factory=lambda: deque(maxlen=WINDOW_STEPS + 1))
    _evals: list = field(default_factory=list)

    def plan(self, step: int, spent_s: float) -> int:
        """The last step, from ``step`` at ``spent_s`` seconds (training and evaluations) into this process's share."""
        left = self.budget_s - self.used_s - spent_s
        step_s = self.recent_step_s()
        eval_s = sum(self._evals) / len(self._evals) if self._evals else self.eval_s

        def cost(last: int) -> float:  # the steps still to run and the evaluations they bring
            evaluations = (last // self.every - step // self.every + FINAL_EVAL) if self.every else 0
            return (last - step) * step_s + evaluations * eval_s

        if step >= self.limit:
            return self.limit
        low, high = step + 1, self.limit  # the latest last step whose cost fits (the cost grows with it)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if cost(middle) <= left else (low, middle - 1)
        return low

    def stepped(self, step: int, train_s: float) -> None:
        """A step ended ``train_s`` seconds of training (evaluations not counted) into this process's share."""
        self._times.append((step, train_s))

    def evaluated(self, seconds: float) -> None:
        self._evals.append(seconds)

    def recent_step_s(self) -> float:
        if len(self._times) < 4:  # too few steps of its own: the start's measurement
            return self.step_s
        (first_step, first_s), (last_step, last_s) = self._times[0], self._times[-1]
        return (last_s - first_s) / max(1, last_step - first_step)

    def to_dict(self) -> dict:
        return {"budget_s": self.budget_s, "limit": self.limit, "step_s": round(self.step_s, 4),
                "eval_s": round(self.eval_s, 2), "every": self.every}


def follow_schedule(scheduler, last_step: int) -> bool:
    """Make a transformers learning-rate schedule (warm-up, then linear / cosine / ... decay) end at ``last_step``;
    False when the schedule has no end to move (constant)."""
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if not lambdas:
        return False
    moved = False
    for i, fn in enumerate(lambdas):
        if isinstance(fn, functools.partial) and "num_training_steps" in fn.keywords:
            lambdas[i] = functools.partial(fn.func, *fn.args, **{**fn.keywords, "num_training_steps": last_step})
            moved = True
    return moved
