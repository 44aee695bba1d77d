"""The evaluation during training: every ``eval_steps``, macro-F1 and minority recall on a capped, stratified Val A
sample (the live chart, early stopping, which adapter is kept), with the probabilities corrected to the natural class
mix as the final evaluation does; and how long scoring a row takes, so a time budget can plan its evaluations."""

from __future__ import annotations

import time

import pandas as pd

from studio.classifier.calibration import class_priors
from studio.classifier.choice import applied
from studio.classifier.rules import Sources, card_rule
from studio.config import RunConfig
from studio.data.prepare import PreparedData
from studio.evaluate.evaluation import make_scorer
from studio.evaluate.metrics import set_metrics, share_better

# An earlier adapter is kept over the last one only when it beats it in this share of paired resamples of the
# periodic sample: keeping the best sample figure instead kept noise (docs/benchmarks.md, "Which adapter a run keeps").
CLEARLY_BETTER = 0.95
MINORITY_ROWS = 30  # the fewest minority rows the sample's minority recall is read on, where Val A has them


class PeriodicEvaluator:
    """``evaluator(model, step) -> {"eval_rows", "accuracy", "macro_f1", "minority_recall", "minority_rows",
    "predictions"}``;
    ``predictions``: (true, predicted) class indices of the sample's rows, so the run can tell whether one adapter is
    clearly better than another on the same rows (not written to the metrics stream)."""

    def __init__(self, prepared: PreparedData, tokenizer, config: RunConfig):
        val_a = prepared.split.val_a
        cap = config.train.eval_max_rows
        self.minority = prepared.table.minority_label
        if len(val_a) > cap:
            sample = val_a.groupby("label", group_keys=False).sample(frac=cap / len(val_a),
                                                                     random_state=config.data.split_seed)
            # The minority class gets at least MINORITY_ROWS rows of its own (where Val A has them): at its natural
            # share it had 2 of 150 rows, and its recall line jumped 0 -> 1 -> 0.5.
            minority = val_a[val_a["label"] == self.minority]
            extra = minority.drop(sample.index, errors="ignore")
            missing = min(len(extra), MINORITY_ROWS - int((sample["label"] == self.minority).sum()))
            if missing > 0:
                sample = pd.concat([sample, extra.sample(n=missing, random_state=config.data.split_seed)])
            val_a = sample
        self.prepared, self.tokenizer, self.val_a = prepared, tokenizer, val_a
        self.minority_rows = int((val_a["label"] == self.minority).sum())
        # the LLM corrected all the way to the natural class mix, as an adapter card of a run not evaluated yet says
        self.rule, self.task = card_rule({"class_prior": class_priors(prepared.counts(), prepared.labels)},
                                         prepared.labels)

    @property
    def rows(self) -> int:
        return len(self.val_a)

    def __call__(self, model, step: int) -> dict:
        if self.val_a.empty:
            return {}
        scorer = make_scorer(model, self.tokenizer, self.prepared, fast=True)
        outcome = applied(self.rule, Sources(scorer.score(list(self.val_a["text"])).probs, None), self.task)
        labels = self.prepared.labels
        chosen = outcome.decided.tolist()
        truth = list(self.val_a["label"])
        metrics = set_metrics(truth, [labels[i] for i in chosen], labels, self.minority)
        return {"eval_rows": len(self.val_a), "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                "minority_recall": metrics["minority_recall"], "minority_rows": self.minority_rows,
                "predictions": ([labels.index(t) for t in truth], chosen)}

    def seconds_per_row(self, model, rows: int = 16) -> float:
        """Seconds to score one Val A row as this evaluation does (a seeded sample of real rows, after a warm-up batch
        that also builds the rubric's cache)."""
        val_a = self.prepared.split.val_a
        texts = list(val_a["text"].sample(n=min(rows, len(val_a)), random_state=0))
        scorer = make_scorer(model, self.tokenizer, self.prepared, fast=True)
        scorer.score(texts[:4])
        started = time.perf_counter()
        scorer.score(texts)
        seconds = (time.perf_counter() - started) / max(1, len(texts))
        model.train()
        return seconds


def share_earlier_better(earlier: dict, latest: dict | None, classes: int) -> float | None:
    """How sure the periodic sample is that the ``earlier`` evaluation's adapter beats the ``latest`` one's: the
    share of paired bootstrap resamples of the sample's rows on which it has the higher macro-F1. None when there
    are no rows to compare (an evaluation that does not return its ``predictions``)."""
    mine, theirs = earlier.get("predictions"), (latest or {}).get("predictions")
    if mine is None or theirs is None or list(mine[0]) != list(theirs[0]):
        return None
    return share_better(mine[0], mine[1], theirs[1], classes)
