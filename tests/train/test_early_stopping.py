"""Early stopping on the periodic Val A macro-F1; the adapter kept is the last one unless an earlier one is clearly
better on the sample's rows (or, for an evaluation without rows, the best); the time budget plans the steps and stops
on time; the auto recipe decides what was left on auto."""

import time

import numpy as np
import pytest
import torch
from conftest import toy_config
from safetensors.torch import load_file
from transformers import TrainerCallback

from studio.classifier.candidates import macro_f1
from studio.evaluate.metrics import share_better
from studio.train.worker import start_training

SCRIPTED = {5: 0.50, 10: 0.90, 15: 0.60, 20: 0.70, 25: 0.80, 30: 0.85}  # the best is at step 10


def scripted_evaluator(prepared, tokenizer, config):
    def evaluate(model, step):
        return {"eval_rows": 10, "accuracy": SCRIPTED[step], "macro_f1": SCRIPTED[step], "minority_recall": 1.0}

    return evaluate


TRUTH = [0] * 20 + [1] * 20


def evaluator_with_rows(wrong_at: dict[int, int]):
    """A periodic evaluation over 40 rows that gets ``wrong_at[step]`` of them wrong (the first ones of each class,
    in turn), with its rows, as the studio's evaluation returns them."""
    def factory(prepared, tokenizer, config):
        def evaluate(model, step):
            predicted = list(TRUTH)
            for i in range(wrong_at[step]):
                row = i // 2 + (20 if i % 2 else 0)
                predicted[row] = 1 - predicted[row]
            f1 = macro_f1(np.array(TRUTH), np.array(predicted), 2)
            return {"eval_rows": 40, "accuracy": 1 - wrong_at[step] / 40, "macro_f1": f1, "minority_recall": 1.0,
                    "predictions": (list(TRUTH), predicted)}

        return evaluate

    return factory


class Snapshot(TrainerCallback):
    """The adapter's weights as they were at one step."""

    def __init__(self, step):
        self.step, self.weights = step, None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            self.weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_early_stopping_keeps_the_best_adapter(tiny_model_dir, toy_csv, tmp_path):
    at_best = Snapshot(10)
    config = toy_config(tiny_model_dir, toy_csv, max_steps=200, eval_steps=5, early_stopping_patience=3)
    job = start_training(config, tmp_path, callbacks=[at_best], evaluator_factory=scripted_evaluator)
    assert job.wait(300) and job.state == "finished", job.error
    status = job.run.status()
    assert status["stop_reason"] == "early stopping" and status["step"] == 26  # 3 evaluations after the best
    assert status["adapter_step"] == 10 and status["best_eval"]["macro_f1"] == 0.90
    evals = job.stream.records("eval")
    assert [e["step"] for e in evals] == [5, 10, 15, 20, 25]
    assert [e["best"] for e in evals] == [True, True, False, False, False]
    saved = load_file(job.run.adapter / "adapter_model.safetensors")
    trained = {n: p for n, p in job.model.named_parameters() if p.requires_grad}
    assert len(saved) == len(at_best.weights) > 0
    for name, value in at_best.weights.items():  # the in-memory model and the saved adapter are step 10's
        assert torch.equal(trained[name], value)
    step_10 = {k.replace(".default", ""): v for k, v in at_best.weights.items()}  # PEFT saves without the name
    for key, value in saved.items():
        assert torch.equal(step_10[key].cpu(), value)
    assert "Keeping the best adapter: step 10" in job.log_tail(100)
    assert job.snapshot()["best_eval"]["step"] == 10


def test_without_patience_the_run_ends_and_still_keeps_its_best(tiny_model_dir, toy_csv, tmp_path):
    config = toy_config(tiny_model_dir, toy_csv, max_steps=30, eval_steps=5, early_stopping_patience=0)
    job = start_training(config, tmp_path, evaluator_factory=scripted_evaluator)
    assert job.wait(300) and job.state == "finished", job.error
    status = job.run.status()
    assert status["step"] == 30 and status["stop_reason"] is None and status["adapter_step"] == 10


def test_the_time_budget_plans_the_steps_and_stops_on_time(tiny_model_dir, toy_csv, tmp_path):
    budget_min = 0.25
    config = toy_config(tiny_model_dir, toy_csv, max_steps=-1, num_train_epochs=10_000, eval_steps=-1,
                        time_budget_minutes=budget_min, learning_rate=-1, early_stopping_patience=0)
    started = time.time()
    job = start_training(config, tmp_path)
    assert job.wait(300) and job.state == "finished", job.error
    facts = job.run.record()
    resolved = facts["resolved"]
    assert resolved["time_budget_minutes"] == budget_min and resolved["learning_rate"] == 1e-3  # a tiny model
    planned = resolved["max_steps"]
    assert 5 < planned < 10_000 * 12  # far fewer steps than 10,000 epochs, planned from the measured step time
    status = job.run.status()  # the pacer moves the end as the speed changes (281 steps once, of 280 planned)
    assert status["step"] <= status["max_steps"]  # it stopped at its last plan's end, or on time before it
    trained_s = [r for r in job.stream.records("train")][-1]["elapsed_s"]
    assert trained_s <= budget_min * 60 * 1.3 and time.time() - started < 120
    assert "Measured" in job.log_tail(200) and "fit the 0.25-minute budget" in job.log_tail(200)
    assert resolved["eval_steps"] > 0 and job.stream.records("eval")  # auto evaluation, within the budget


def test_an_earlier_adapter_is_kept_only_when_clearly_better_than_the_last(tiny_model_dir, toy_csv, tmp_path):
    """Step 10 gets every row right and the last step 12 of 40 wrong: clearly better, kept."""
    config = toy_config(tiny_model_dir, toy_csv, max_steps=20, eval_steps=5, early_stopping_patience=0)
    job = start_training(config, tmp_path / "clear", evaluator_factory=evaluator_with_rows(
        {5: 16, 10: 0, 15: 12, 20: 12}))
    assert job.wait(300) and job.state == "finished", job.error
    assert job.run.status()["adapter_step"] == 10 and job.snapshot()["adapter_step"] == 10
    assert "Keeping the best adapter: step 10" in job.log_tail(100) and "better in 100% of resamples" in \
        job.log_tail(100)
    assert all("predictions" not in e for e in job.stream.records("eval"))  # the rows stay out of the stream
    assert "predictions" not in (job.run.status()["best_eval"] or {})


def test_an_earlier_adapter_only_a_row_better_is_not_kept(tiny_model_dir, toy_csv, tmp_path):
    """Step 10 gets one row more right than the last: within the sample's noise, so the last adapter is kept."""
    config = toy_config(tiny_model_dir, toy_csv, max_steps=20, eval_steps=5, early_stopping_patience=0)
    job = start_training(config, tmp_path / "noise", evaluator_factory=evaluator_with_rows(
        {5: 6, 10: 3, 15: 5, 20: 4}))
    assert job.wait(300) and job.state == "finished", job.error
    status = job.run.status()
    assert status["best_eval"]["step"] == 10 and status["adapter_step"] == 20
    assert "Keeping the last adapter (step 20)" in job.log_tail(100)
    saved = load_file(job.run.adapter / "adapter_model.safetensors")
    trained = {n.replace(".default", ""): p for n, p in job.model.named_parameters() if p.requires_grad}
    for key, value in saved.items():  # the last step's weights, in memory and on disk
        assert torch.equal(trained[key].cpu(), value)


def test_the_paired_bootstrap_against_hand_computed_cases():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 200)
    for _ in range(20):  # the fast macro-F1 is scikit-learn's (zero_division=0)
        predicted = rng.integers(0, 3, 200)
        from sklearn.metrics import f1_score

        assert macro_f1(truth, predicted, 3) == pytest.approx(f1_score(truth, predicted, labels=[0, 1, 2],
                                                                      average="macro", zero_division=0))
    wrong = (truth + 1) % 3
    assert share_better(truth, truth, wrong, 3) == 1.0 and share_better(truth, wrong, truth, 3) == 0.0
    assert share_better(truth, truth, truth, 3) == 0.0  # never strictly better than itself
    one_off = truth.copy()
    one_off[0] = (truth[0] + 1) % 3
    assert 0.3 < share_better(truth, truth, one_off, 3) < 0.95  # one row of 200: not clearly better


def test_a_last_adapter_as_good_as_the_best_is_kept_and_said_so(tiny_model_dir, toy_csv, tmp_path):
    config = toy_config(tiny_model_dir, toy_csv, max_steps=20, eval_steps=5, early_stopping_patience=0)
    job = start_training(config, tmp_path / "tie", evaluator_factory=evaluator_with_rows({5: 6, 10: 3, 15: 5, 20: 3}))
    assert job.wait(300) and job.state == "finished", job.error
    assert job.run.status()["adapter_step"] == 20
    assert "Keeping the last adapter (step 20): the latest periodic evaluation (step 20" in job.log_tail(100)
    assert "is as good as the best (step 10)" in job.log_tail(100)
