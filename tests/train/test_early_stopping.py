"""Early stopping on the periodic Val A macro-F1 keeps the best adapter; the time budget plans the steps and stops
on time; the auto recipe decides what was left on auto."""

import time

import torch
from conftest import toy_config
from safetensors.torch import load_file
from transformers import TrainerCallback

from studio.train.worker import start_training

SCRIPTED = {5: 0.50, 10: 0.90, 15: 0.60, 20: 0.70, 25: 0.80, 30: 0.85}  # the best is at step 10


def scripted_evaluator(prepared, tokenizer, config):
    def evaluate(model, step):
        return {"eval_rows": 10, "accuracy": SCRIPTED[step], "macro_f1": SCRIPTED[step], "minority_recall": 1.0}

    return evaluate


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
    assert job.run.status()["step"] <= planned
    trained_s = [r for r in job.stream.records("train")][-1]["elapsed_s"]
    assert trained_s <= budget_min * 60 * 1.3 and time.time() - started < 120
    assert "Measured" in job.log_tail(200) and "fit the 0.25-minute budget" in job.log_tail(200)
    assert resolved["eval_steps"] > 0 and job.stream.records("eval")  # auto evaluation, within the budget
