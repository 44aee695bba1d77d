"""A time budget that is used and a crash that costs at most a checkpoint interval: the pacer's plan, the schedule
that follows the re-planned end, a run whose start was timed slow (a busy page) that still uses its budget, one that
slows down mid-run and still ends on time, and kill -9 then resume from the CLI with the budget's rest."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, toy_config, wait_for
from transformers import TrainerCallback, get_scheduler

from studio.runs.folder import CHECKPOINT_DONE, RunDir
from studio.train.pacing import Pacer, follow_schedule
from studio.train.worker import start_training


def test_the_plan_fills_what_is_left_of_the_budget():
    pacer = Pacer(budget_s=100, limit=1000, step_s=2.0, eval_s=5.0, every=10)
    # 100 s: n steps of 2 s and (n // 10 + 1) evaluations of 5 s → 39 steps (78 s + 4 evaluations: 98 s)
    assert pacer.plan(0, 0.0) == 39
    for step in range(1, 11):  # the run's own steps are faster than the start's measurement: 1 s each
        pacer.stepped(step, float(step))
    pacer.evaluated(3.0)  # and an evaluation took 3 s
    # 87 s left at step 10: up to step 76, 66 steps of 1 s and 7 evaluations (at 20 … 70, and the last) of 3 s
    assert pacer.plan(10, 13.0) == 76
    assert Pacer(100, limit=40, step_s=0.1).plan(0, 0) == 40  # never past the trainer's last step
    assert Pacer(100, limit=40, step_s=0.1).plan(40, 1.0) == 40  # not even when the budget has room
    assert Pacer(100, limit=40, step_s=1.0, used_s=99.5).plan(30, 0) == 31  # at least the step under way
    assert Pacer(100, limit=1000, step_s=1.0, used_s=40).plan(0, 0) == 60  # a resumed run: the budget's rest


def test_the_schedule_follows_the_new_end():
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=1.0)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=1000)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert follow_schedule(scheduler, 20)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0)  # it ends at step 20 now, not 1000
    constant = get_scheduler("constant", torch.optim.SGD(params, lr=1.0))
    assert not follow_schedule(constant, 20)


class SlowAfter(TrainerCallback):
    """Each step after ``step`` takes ``seconds`` longer (another process takes the CPU mid-run)."""

    def __init__(self, step, seconds):
        self.step, self.seconds = step, seconds

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > self.step:
            time.sleep(self.seconds)


def budgeted(tiny_model_dir, toy_csv, budget_min, **train):
    return toy_config(tiny_model_dir, toy_csv, max_steps=-1, num_train_epochs=10_000, eval_steps=0,
                      time_budget_minutes=budget_min, early_stopping_patience=0, **train)


def used_s(job) -> float:
    return job.stream.records("train")[-1]["elapsed_s"]


def test_a_slow_start_neither_shortens_the_run_nor_leaves_the_budget_unused(tiny_model_dir, toy_csv, tmp_path,
                                                                               monkeypatch):
    import studio.train.finetune as worker  # the run's steps, where the step time is measured

    measured = worker.measure_step_seconds
    monkeypatch.setattr(worker, "measure_step_seconds", lambda *a: 4 * measured(*a))  # timed while the page was busy
    budget = 0.3 * 60
    job = start_training(budgeted(tiny_model_dir, toy_csv, 0.3), tmp_path)
    assert job.wait(300) and job.state == "finished", job.error
    planned = job.run.record()["resolved"]["max_steps"]
    assert job.run.status()["step"] > 2 * planned  # re-planned from the run's own speed
    assert 0.9 * budget <= used_s(job) <= 1.05 * budget
    rates = [r["learning_rate"] for r in job.stream.records("train")]
    assert rates[-1] < 0.1 * max(rates)  # the schedule ended with the run, not at the first plan's end


def test_a_run_that_slows_down_still_ends_on_time(tiny_model_dir, toy_csv, tmp_path):
    budget = 0.3 * 60
    job = start_training(budgeted(tiny_model_dir, toy_csv, 0.3), tmp_path, callbacks=[SlowAfter(10, 0.15)])
    assert job.wait(300) and job.state == "finished", job.error
    assert 0.85 * budget <= used_s(job) <= 1.05 * budget
    rates = [r["learning_rate"] for r in job.stream.records("train")]
    assert rates[-1] < 0.15 * max(rates)


def test_kill_9_costs_at_most_a_checkpoint_interval_and_resume_uses_the_budgets_rest(tiny_model_dir, toy_csv,
                                                                                     tmp_path):
    budget = 0.5 * 60
    config = budgeted(tiny_model_dir, toy_csv, 0.5, checkpoint_minutes=0.05)  # a checkpoint every 3 s
    config.save(tmp_path / "run.json")
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "studio", "train", "--config", str(tmp_path / "run.json"), "--runs-dir",
               str(runs), "--name", "crash", "--quiet"]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = RunDir(runs / "crash")

    def trained_for(seconds):
        records = [json.loads(line) for line in run.metrics_path.read_text().splitlines()] \
            if run.metrics_path.exists() else []
        return any(r.get("kind") == "train" and r["elapsed_s"] >= seconds for r in records) or first.poll() is not None

    assert wait_for(lambda: trained_for(12), timeout=240)
    first.send_signal(signal.SIGKILL)
    first.wait()
    last_logged = max(r["step"] for r in run.metrics() if r.get("kind") == "train")
    checkpoint = run.last_checkpoint()
    assert checkpoint is not None and (checkpoint / CHECKPOINT_DONE).exists()
    marker = json.loads((checkpoint / CHECKPOINT_DONE).read_text())
    killed_at = max(r["elapsed_s"] for r in run.metrics() if r.get("kind") == "train")
    assert killed_at - marker["budget_used_s"] <= 3 + 3  # at most the interval (+ a step and the save) is lost
    resumed = subprocess.run([sys.executable, "-m", "studio", "train", "--resume", "crash", "--runs-dir", str(runs),
                              "--quiet", "--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["state"] == "finished"
    log = run.log_path.read_text()
    assert f"resuming from {checkpoint.name}" in log and "of the 0.5-minute budget left" in log
    after = [r for r in run.metrics() if r.get("kind") == "train" and r["step"] > marker["step"]]
    spent_after = after[-1]["elapsed_s"]  # this process's share
    assert 0.8 * (budget - marker["budget_used_s"]) <= spent_after <= 1.1 * (budget - marker["budget_used_s"])
    assert run.status()["step"] > last_logged


def test_the_verdict_names_the_budget_when_it_cut_the_first_pass():
    from studio.evaluate.verdicts import _budget

    cut = _budget({"epochs": 0.6, "budget_minutes": 7, "ended_by_budget": True})
    assert cut and "7-minute time budget ended training after 0.6 of one pass" in cut[0][1]
    assert "Time budget, Model & LoRA tab" in cut[0][1]
    assert not _budget({"epochs": 1.4, "budget_minutes": 7, "ended_by_budget": True})
    assert not _budget({"epochs": 0.6, "budget_minutes": 7, "ended_by_budget": False})
