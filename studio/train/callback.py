"""The TrainerCallback that feeds a run's metrics stream (``studio.runs.stream``): loss, learning rate, grad norm,
tokens/s, ETA, memory; it also checks for a stop request, runs the optional periodic evaluation, paces a time
budget (``studio.train.pacing``) and asks for a checkpoint every ``checkpoint_s`` seconds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import psutil
import torch
from transformers import TrainerCallback

from studio.machine import process_peak_rss_gb, process_rss_gb
from studio.runs.stream import MetricsStream
from studio.train.distributed import agreed_min, any_rank
from studio.train.pacing import REPLAN_STEPS, Pacer, follow_schedule

GIB = 2**30


def memory_snapshot() -> dict:
    """CUDA: allocated / reserved / peak reserved / total (GiB) and peak reserved %; CPU: process RSS.
    Runs at every logging step, so it only reads counters."""
    rss = process_rss_gb()
    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        peak = torch.cuda.max_memory_reserved()
        return {"device": "cuda", "mem_allocated_gb": round(torch.cuda.memory_allocated() / GIB, 3),
                "mem_reserved_gb": round(torch.cuda.memory_reserved() / GIB, 3),
                "mem_peak_reserved_gb": round(peak / GIB, 3), "mem_total_gb": round(total / GIB, 3),
                "mem_reserved_pct": round(100 * peak / total, 1), "rss_gb": round(rss, 3)}
    return {"device": "cpu", "rss_gb": round(rss, 3),
            "mem_total_gb": round(psutil.virtual_memory().total / GIB, 3)}


class StudioCallback(TrainerCallback):
    """Feeds the stream at every logging step; honours stop requests; runs the periodic evaluation hook and stops
    early when Val A's macro-F1 has not improved for ``patience`` evaluations (``on_best(model, step, metrics)`` is
    called at every new best); stops when the time budget is spent; ``pacer``: re-plans the last step as the speed
    changes (``on_replan(last_step)`` is told)."""

    def __init__(self, stream: MetricsStream, stop_event: threading.Event,
                 evaluator: Callable[[object, int], dict] | None = None, eval_steps: int = 0,
                 log: Callable[[str], None] = print, patience: int = 0,
                 on_best: Callable[[object, int, dict], None] | None = None, budget_s: float | None = None,
                 checkpoint_s: float = 0.0):
        self.stream, self.stop_event, self.evaluator, self.eval_steps = stream, stop_event, evaluator, eval_steps
        self.log, self.patience, self.on_best, self.budget_s = log, patience, on_best, budget_s
        self.checkpoint_s = checkpoint_s
        self.pacer: Pacer | None = None
        self.on_replan: Callable[[int], None] = lambda last: None
        self.stopped = False
        self.stop_reason: str | None = None  # "requested", "early stopping", "time budget"
        self.best: dict | None = None  # {"step", "macro_f1", ...} of the best periodic evaluation
        self.latest: dict | None = None  # {"step", "macro_f1", "predictions"} of the latest one
        self._since_best = 0
        self._early = False
        self._start = self._last_time = self._last_save = None
        self._start_step = self._last_tokens = 0
        self._eval_s = 0.0  # seconds of periodic evaluation in this process

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        self._start = self._last_time = self._last_save = time.perf_counter()
        self._start_step = state.global_step  # > 0 after a resume
        self._last_tokens = state.num_input_tokens_seen or 0
        if self.pacer is not None:
            self._replan(args, state, self.pacer.plan(state.global_step, 0.0), lr_scheduler)

    def spent_s(self) -> float:
        """Budget spent so far: before this process (a resumed run) and in it (training and evaluations)."""
        used = self.pacer.used_s if self.pacer else 0.0
        return used + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def on_step_end(self, args, state, control, model=None, lr_scheduler=None, **kwargs):
        now = time.perf_counter()
        if self.pacer is not None:
            self.pacer.stepped(state.global_step, now - self._start - self._eval_s)
            if state.global_step % REPLAN_STEPS == 0:
                last = self.pacer.plan(state.global_step, now - self._start)
                self._replan(args, state, agreed_min(last) if args.world_size > 1 else last, lr_scheduler)
                if state.global_step < state.max_steps:  # transformers' flow callback stopped at the old last step
                    control.should_training_stop = False
        self._stop_if_asked(args, state, control)
        save = bool(self.checkpoint_s) and now - self._last_save >= self.checkpoint_s
        if (any_rank(save) if args.world_size > 1 else save) and not self.stopped:
            control.should_save = True
        evaluate_now = self.evaluator and self.eval_steps and state.global_step % self.eval_steps == 0
        if evaluate_now and state.is_world_process_zero and not self.stopped:  # rank 0 evaluates; no collectives
            self._evaluate(model, state)
        return control

    def on_save(self, args, state, control, **kwargs):
        self._last_save = time.perf_counter()

    def _replan(self, args, state, last: int, lr_scheduler) -> None:
        """The trainer stops at ``last`` (transformers' flow callback reads state.max_steps), and the learning-rate
        schedule ends there."""
        if last != state.max_steps:
            state.max_steps = last
            follow_schedule(lr_scheduler, last)
            self.on_replan(last)

    def _stop_if_asked(self, args, state, control) -> None:
        over_budget = (self.budget_s is not None and self.spent_s() >= self.budget_s
                       and state.global_step < state.max_steps)  # (a paced run ending on plan is not cut)
        reason = ("requested" if self.stop_event.is_set() else "early stopping" if self._early else
                  "time budget" if over_budget else None)
        requested = reason is not None
        if args.world_size > 1:  # all ranks stop at the same step (rank 0 alone evaluates)
            requested = any_rank(requested)
        if requested and not self.stopped:
            self.stopped = True
            self.stop_reason = reason or "requested"
            control.should_training_stop = True
            control.should_save = True
            self.log(self._stop_message(state.global_step))

    def _stop_message(self, step: int) -> str:
        if self.stop_reason == "early stopping" and self.best:
            return (f"Early stopping at step {step}: Val A macro-F1 has not improved for {self.patience} evaluations "
                    f"(best {self.best['macro_f1']:.3f} at step {self.best['step']}).")
        if self.stop_reason == "time budget":
            return f"Time budget of {self.budget_s / 60:.1f} minutes reached at step {step}: stopping and saving."
        return f"Stop requested: finishing step {step} and saving."

    def on_train_end(self, args, state, control, model=None, **kwargs):
        """A last evaluation at the final step (the end of the schedule or of the time budget), so the best adapter
        is chosen among everything trained; not after a stop request or early stopping (nothing better since)."""
        if (not (self.evaluator and self.eval_steps) or not state.is_world_process_zero or model is None
                or self.stop_reason in ("requested", "early stopping")):
            return
        if not any(r.get("step") == state.global_step for r in self.stream.records("eval")):
            self._evaluate(model, state)

    def _evaluate(self, model, state):
        started = time.perf_counter()
        was_training = model.training
        try:
            result = self.evaluator(model, state.global_step)
        finally:
            if was_training:
                model.train()
        took = time.perf_counter() - started
        predictions = result.pop("predictions", None)  # the rows, for the adapter kept at the end; not streamed
        score = result.get("macro_f1")
        better = score is not None and (self.best is None or score > self.best["macro_f1"])
        self.stream.append({"kind": "eval", "step": state.global_step, **result, "eval_seconds": round(took, 2),
                            "best": better})
        self._last_time += took  # evaluation time is not training throughput
        self._eval_s += took
        if self.pacer is not None:
            self.pacer.evaluated(took)
        self.latest = {"step": state.global_step, "macro_f1": score, "predictions": predictions}
        if better:
            self.best, self._since_best = {"step": state.global_step, **result}, 0
            if self.on_best:
                self.on_best(model, state.global_step, {**result, "predictions": predictions})
        elif score is not None:
            self._since_best += 1
            self._early = bool(self.patience) and self._since_best >= self.patience

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen or 0
        elapsed = now - self._start
        done = state.global_step - self._start_step
        remaining = max(0, state.max_steps - state.global_step)
        memory = memory_snapshot()
        record = {
            "kind": "train", "step": state.global_step, "max_steps": state.max_steps,
            "epoch": round(state.epoch or 0.0, 4), "loss": logs.get("loss"),
            "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
            "tokens_seen": tokens, "elapsed_s": round(elapsed, 2),
            "tokens_per_s": round((tokens - self._last_tokens) / max(now - self._last_time, 1e-9), 1),
            "eta_s": self._eta(elapsed, done, remaining),
            **memory, "rss_peak_gb": round(max(memory["rss_gb"], process_peak_rss_gb()), 3),
        }
        self._last_time, self._last_tokens = now, tokens
        self.stream.append(record)

    def _eta(self, elapsed: float, done: int, remaining: int) -> float | None:
        """Seconds left: with a paced budget, the budget's rest (the plan ends there); else from the steps' pace."""
        if self.pacer is not None:
            return round(max(0.0, self.budget_s - self.spent_s()), 1)
        return round(elapsed / done * remaining, 1) if done else None


class SaveHook(TrainerCallback):
    """Calls ``on_save(step, max_steps, checkpoint_path)`` after every checkpoint."""

    def __init__(self, on_save: Callable[[int, int, Path], None]):
        self.on_save_fn = on_save

    def on_save(self, args, state, control, **kwargs):
        self.on_save_fn(state.global_step, state.max_steps, Path(args.output_dir) / f"checkpoint-{state.global_step}")
