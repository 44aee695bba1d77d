"""The evaluation during training: every ``eval_steps``, macro-F1 and minority recall on a capped, stratified Val A
sample (the live chart, early stopping, the best adapter kept), with the probabilities corrected to the natural class
mix as the final evaluation does; and how long scoring a row takes, so a time budget can plan its evaluations."""

from __future__ import annotations

import time

from studio.config import RunConfig
from studio.data.prepare import PreparedData
from studio.evaluate.calibration import apply_calibration, class_priors
from studio.evaluate.evaluation import make_scorer
from studio.evaluate.metrics import set_metrics


class PeriodicEvaluator:
    """``evaluator(model, step) -> {"eval_rows", "accuracy", "macro_f1", "minority_recall"}``."""

    def __init__(self, prepared: PreparedData, tokenizer, config: RunConfig):
        val_a = prepared.split.val_a
        cap = config.train.eval_max_rows
        if len(val_a) > cap:
            val_a = val_a.groupby("label", group_keys=False).sample(frac=cap / len(val_a),
                                                                     random_state=config.data.split_seed)
        self.prepared, self.tokenizer, self.val_a = prepared, tokenizer, val_a
        self.minority = prepared.table.minority_label
        self.card = {"class_prior": class_priors(prepared.counts(), prepared.labels), "temperature": 1.0}

    @property
    def rows(self) -> int:
        return len(self.val_a)

    def __call__(self, model, step: int) -> dict:
        if self.val_a.empty:
            return {}
        scorer = make_scorer(model, self.tokenizer, self.prepared)
        probs = apply_calibration(scorer.score(list(self.val_a["text"])).probs, self.card)
        labels = self.prepared.labels
        predicted = [labels[i] for i in probs.argmax(axis=1)]
        metrics = set_metrics(list(self.val_a["label"]), predicted, labels, self.minority)
        return {"eval_rows": len(self.val_a), "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                "minority_recall": metrics["minority_recall"]}

    def seconds_per_row(self, model, rows: int = 16) -> float:
        """Seconds to score one Val A row as this evaluation does (a seeded sample of real rows, after a warm-up batch
        that also builds the rubric's cache)."""
        val_a = self.prepared.split.val_a
        texts = list(val_a["text"].sample(n=min(rows, len(val_a)), random_state=0))
        scorer = make_scorer(model, self.tokenizer, self.prepared)
        scorer.score(texts[:4])
        started = time.perf_counter()
        scorer.score(texts)
        seconds = (time.perf_counter() - started) / max(1, len(texts))
        model.train()
        return seconds
