"""The guide's steps for one run, in order: the backend, the data, the recipe's auto settings, the model with its
LoRA adapter, the trainer, training (planned to a time budget where there is one), the adapter kept and saved.
``FineTune.run`` reads top to bottom as those steps, one method each, and says how the run ended (``Ended``).

It holds what the steps make (the prepared data, the resolved plan, the model, the step count) and what each phase
learnt in the run record (``studio.runs.recorder``), but no log, stop flag or status file: it tells its job
(``studio.train.worker.TrainingJob``, through ``report``) what to log, which phase it is in and when a checkpoint is
complete, and asks it whether to stop.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from studio.config import RunConfig, effective_checkpointing, rows_per_step
from studio.data.prepare import PreparedData, prepare_data
from studio.estimate.plan import Preflight, resolve_for_run, row_cost
from studio.estimate.recipe import eval_every, step_warnings
from studio.estimate.vram import BANDS
from studio.evaluate.first import keep_first_in_background
from studio.evaluate.periodic import PeriodicEvaluator
from studio.machine import import_stack, ranks
from studio.models.loading import choose_backend, load_for_training, load_tokenizer
from studio.runs.folder import CHECKPOINT_DONE, RunDir
from studio.runs.recorder import RunRecorder
from studio.runs.stream import MetricsStream
from studio.train.adapter import save_adapter
from studio.train.best import BestAdapter
from studio.train.memory import estimate_for_run, free_memory, reset_peak_memory
from studio.train.sft import choose_objective, sft_args, sft_trainer_class
from studio.train.step_plan import StepPlan
from studio.train.timing import measure_step_seconds, record_speed

# Imported inside the steps that need them, after the backend is chosen: transformers, trl and datasets (unsloth must
# patch the stack before any of them is imported).


class Report(Protocol):
    """What a run's steps tell their job, and ask it."""

    stop_event: object  # threading.Event: set when the person asked the run to stop
    phase: str  # what the steps do now (the job shows it and notes it in status.json)

    def log(self, message: str) -> None: ...

    def checkpointed(self, step: int, max_steps: int, path: Path) -> None: ...


@dataclass
class Ended:
    """How a run ended: its state ("finished" or "stopped"), what status.json records of it, and in words."""

    state: str
    status: dict
    words: str


class FineTune:
    def __init__(self, config: RunConfig, run: RunDir, checked: Preflight, resume_from: Path | None,
                 callbacks: list, evaluator_factory: Callable | None, stream: MetricsStream, report: Report):
        self.config, self.run, self.resume_from, self.callbacks = config, run, resume_from, callbacks
        self.table = checked.table  # the data file as Start read and checked it: the sets are prepared from it
        self.warnings = list(checked.warnings)
        self.evaluator_factory = evaluator_factory or PeriodicEvaluator
        self.stream, self.report = stream, report
        self.ranks = ranks()
        self.recorder = RunRecorder(run, config)
        self.backend: dict = {}
        self.plan = StepPlan()  # the run's last step, decided there
        self.model = self.tokenizer = None  # kept after training for evaluation in memory
        self.prepared: PreparedData | None = None
        self.adapter_step: int | None = None  # the step whose adapter is kept, once training ended
        self.memory_estimate: dict | None = None  # "Will it fit?" for this run, from the loaded model's config
        self.resolved = None  # the recipe with the auto settings decided (studio.estimate.recipe)
        self.train_config = config  # the config as trained: the resolved one once decided
        self.kept = BestAdapter()  # the best periodic evaluation's adapter, kept in memory
        self.evaluator = None  # the periodic evaluation, built with the trainer
        self.callback = None  # the trainer's StudioCallback (its time budget, its pace)
        self.gpu_in_use_at_start_gb = 0.0  # GPU memory the process held before this run (other models)

    def log(self, message: str) -> None:
        self.report.log(message)

    @property
    def total_steps(self) -> int | None:
        return self.plan.steps

    @property
    def best(self) -> dict | None:
        return self.kept.best

    def run_steps(self) -> Ended:
        """The guide's steps, one method each."""
        backend = self._choose_backend()
        prepared = self._prepare_data(backend)
        first = self._first_classifier(prepared)
        try:
            self._resolve(backend, prepared)
            loaded, optim = self._load_model(backend)
            if self.report.stop_event.is_set():
                return self._stop_before_training()
            trainer, callback = self._build_trainer(loaded, backend, optim)
            if self.report.stop_event.is_set():
                return self._stop_before_training()
            result = self._fit(trainer, callback, loaded)
            return self._finish(trainer, callback, result)
        finally:
            if first is not None:
                first.join()  # its record is written before the run's end is (seconds, long done by then)

    def _first_classifier(self, prepared: PreparedData):
        """1b. The classic model as the run's first classifier, fitted and evaluated in a thread beside the model's
        loading (a resumed run has one already, or its evaluation)."""
        if not self.ranks.main or self.recorder.record.get("classifier"):
            return None
        return keep_first_in_background(self.run, prepared, write_record=self.recorder.note, log=self.log)

    def _choose_backend(self):
        self.gpu_in_use_at_start_gb = reset_peak_memory()
        backend = choose_backend(self.config.model.backend)
        if backend.name == "unsloth":
            import unsloth  # noqa: F401  (patches transformers/trl/peft: before anything below imports them)
        self.log(f"Backend: {backend.name} ({backend.reason}).")
        self.recorder.phase("backend")
        return backend

    def _prepare_data(self, backend) -> PreparedData:
        """1. Data: the table, label codes chosen with the model's tokenizer, the split, balanced training rows,
        texts fitted to max_seq_length."""
        cfg = self.config
        self.report.phase = "reading the data"
        import_stack()  # this thread may be the process's first to use transformers (the web app)
        tokenizer = load_tokenizer(cfg.model.name, log=self.log)
        prepared = prepare_data(cfg.data, tokenizer, cfg.model.max_seq_length, table=self.table)
        self.prepared = prepared
        self.warnings = _unique(self.warnings + prepared.warnings)
        self.log(f"Data: {len(prepared.train)} training rows after balancing, {len(prepared.split.val_a)} in Val A, "
                 f"{len(prepared.split.val_b)} in Val B; codes " + ", ".join(f"{lb} → {c}" for lb, c in
                                                                           prepared.codes.items()) + ".")
        self.recorder.phase("data", rubric=prepared.rubric, prompt_format=prepared.prompt_format,
                            warnings=self.warnings)
        return prepared

    def _resolve(self, backend, prepared) -> None:
        """2. The settings left on auto, decided from the device, the model's size and the rows."""
        started = (self.recorder.record.get("resolved") or {}) if self.resume_from is not None else None
        resolved = resolve_for_run(self.config, backend, prepared, started, log=self.log)
        self.resolved, self.train_config = resolved, resolved.config
        for choice in resolved.choices:
            self.log(f"Recipe: {choice}.")
        if not resolved.time_budget_s:  # with a budget the steps are known once planned (_plan_for_budget)
            self._warn(step_warnings(resolved.config.train, len(prepared.train), self.ranks.world_size))
        self.recorder.phase("recipe", resolved=resolved.to_dict())

    def _warn(self, warnings: list[str]) -> None:
        for warning in warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)
                self.log(f"Warning: {warning}")

    def _load_model(self, backend):
        """3. The base model + tokenizer, the LoRA adapter attached."""
        cfg = self.train_config
        self.report.phase = "loading model"
        loaded, optim = load_for_training(cfg.model, cfg.lora, cfg.train, backend, log=self.log)
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.backend = {"name": backend.name, "reason": backend.reason, "device": backend.device,
                        "notices": backend.notices, "dtype": loaded.dtype, "autocast": loaded.autocast,
                        "load_in_4bit": loaded.load_in_4bit, "optim": optim, "source": loaded.source,
                        "gradient_checkpointing": effective_checkpointing(cfg.lora.use_gradient_checkpointing,
                                                                          backend.device)}
        for notice in backend.notices:
            self.log(f"Notice: {notice}")
        self._estimate_memory(loaded)
        self.recorder.phase("model", backend=self.backend, memory_estimate=self.memory_estimate,
                            warnings=self.warnings)
        return loaded, optim

    def _build_trainer(self, loaded, backend, optim):
        """4. Trainer (TRL SFTTrainer; the loss at the answer only)."""
        import datasets  # after unsloth's import, which patches the HF stack
        from transformers.trainer_callback import PrinterCallback
        from trl import SFTConfig

        from studio.train.callback import (  # (transformers: after unsloth's patches)
            SaveHook,
            StudioCallback,
        )

        cfg, prepared = self.train_config, self.prepared
        self.report.phase = "formatting data"
        datasets.disable_progress_bars()  # the phase, the log and the UI say what happens; no bars in the terminal
        train_set = datasets.Dataset.from_list(prepared.tokenized(loaded.tokenizer))  # tokenized as scoring reads
        self.log(f"Tokenizing {len(train_set)} training rows through the chat template.")
        gpus = self.ranks.world_size
        self.plan.from_rows(cfg.train, len(train_set), gpus)
        objective = self._objective(loaded, backend)
        args = SFTConfig(**sft_args(cfg, output_dir=self.run.checkpoints, optim=optim, dtype=loaded.dtype,
                                    device=backend.device, autocast=loaded.autocast))
        self.evaluator = self.evaluator_factory(prepared, loaded.tokenizer, cfg)
        callback = StudioCallback(self.stream, self.report.stop_event, evaluator=self.evaluator,
                                  eval_steps=max(0, cfg.train.eval_steps), log=self.log,
                                  patience=cfg.train.early_stopping_patience, on_best=self.kept.keep,
                                  budget_s=self.resolved.time_budget_s, checkpoint_s=60 * cfg.train.checkpoint_minutes)
        callback.on_replan = self.plan.replanned
        self.callback = callback
        trainer = sft_trainer_class()(model=loaded.model, processing_class=loaded.tokenizer, train_dataset=train_set,
                                      args=args, callbacks=[callback, SaveHook(self._on_checkpoint), *self.callbacks],
                                      objective=objective)
        trainer.remove_callback(PrinterCallback)  # the stream, the UI and the CLI's bar show progress instead
        self.recorder.phase("trainer", backend=self.backend, distributed={
            "processes": gpus, "rows_per_step": rows_per_step(cfg.train, gpus),
            "formula": f"batch {cfg.train.per_device_train_batch_size} × grad accum "
                       f"{cfg.train.gradient_accumulation_steps} × {gpus} process{'es' if gpus > 1 else ''}"})
        return trainer, callback

    def _objective(self, loaded, backend):
        """The loss's view of the task, with what keeps the backend from running the prompt prefix once."""
        why_not = ("the Unsloth backend" if backend.name == "unsloth" else "several processes"
                   if self.ranks.distributed else "gradient checkpointing" if self.backend["gradient_checkpointing"]
                   != "false" else None)
        train = self.train_config.train
        objective = choose_objective(loaded.tokenizer, self.prepared, train.objective, train.share_prompt_prefix,
                                     why_not, self.log)
        self.backend.update(objective=objective.name, shared_prefix_tokens=len(objective.prefix_ids or []))
        return objective

    def _fit(self, trainer, callback, loaded):
        """5. Train: within a time budget, the steps are planned from a measured step time first."""
        cfg = self.train_config
        gpus = self.ranks.world_size
        rows = len(trainer.train_dataset)
        if self.resolved.time_budget_s and self.resume_from is None:
            self.report.phase = "measuring speed"
            self._plan_for_budget(trainer, callback, loaded, rows)
        elif self.resolved.time_budget_s:
            self._pace_resumed(callback)
        elif cfg.train.eval_steps < 0:
            callback.eval_steps = eval_every(self.total_steps)
        pace = {"pace": callback.pacer.to_dict()} if callback.pacer else {}
        self.recorder.phase("plan", resolved={**self.resolved.to_dict(), "max_steps": self.total_steps,
                                              "eval_steps": callback.eval_steps, **pace})
        self.report.phase = "training"
        self.log(f"Training {self.total_steps} steps × {rows_per_step(cfg.train, gpus)} rows per step"
                 + (f" (batch × grad accum × {gpus} GPUs)" if gpus > 1 else "") + f" on {rows} training rows"
                 + (f", evaluating every {callback.eval_steps} steps" if callback.eval_steps else "")
                 + (f", resuming from {self.resume_from.name}" if self.resume_from else "") + ".")
        return trainer.train(resume_from_checkpoint=str(self.resume_from) if self.resume_from else None)

    def _plan_for_budget(self, trainer, callback, loaded, rows: int) -> None:
        """Time training micro-steps on real rows, then fit the steps (and their evaluations) to the budget, so the
        learning-rate schedule ends when the time does."""
        cfg = self.train_config.train
        timed = getattr(self.evaluator, "seconds_per_row", None)
        eval_rows = getattr(self.evaluator, "rows", 0) if cfg.eval_steps and timed else 0  # the rows it scores
        score_s = timed(loaded.model) if eval_rows else 0.0
        step_s = measure_step_seconds(trainer, loaded.autocast) * cfg.gradient_accumulation_steps
        row_s = step_s / max(1, cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps)
        before = self.total_steps
        every = callback.eval_steps = self.plan.fit_budget(self.resolved.time_budget_s, step_s, eval_rows, score_s,
                                                           cfg.eval_steps)
        callback.pacer = self.plan.pacer
        self.log(f"Measured {step_s:.2f} s per step ({1 / row_s:.1f} rows/s)"
                 + (f" and {1 / score_s:.1f} rows/s scored" if score_s else "") + f": {self.total_steps} of {before} "
                 f"planned steps fit the {self.resolved.time_budget_s / 60:g}-minute budget"
                 + (f" with an evaluation of {eval_rows} rows every {every} steps" if every else "") + ".")
        cost = row_cost(self.prepared.train_lengths, self.prepared.train_classes(), cfg.seed)
        record_speed(self.config, self.backend, row_s,
                     cost(cfg.per_device_train_batch_size, rows_per_step(cfg, gpus=self.ranks.world_size))
                     if cost else None)
        planned = copy.deepcopy(self.train_config.train)
        planned.max_steps = self.total_steps
        self._warn(step_warnings(planned, rows, self.ranks.world_size))

    def _pace_resumed(self, callback) -> None:
        """A resumed run with a time budget goes on with the budget it has left, paced as it was."""
        pace = (self.recorder.record.get("resolved") or {}).get("pace") or {}
        marker = self.resume_from / CHECKPOINT_DONE
        used = (json.loads(marker.read_text(encoding="utf-8")).get("budget_used_s") or 0.0) if marker.exists() else 0.0
        self.plan.resume(self.resolved.time_budget_s, pace, used)
        callback.pacer = self.plan.pacer
        callback.eval_steps = pace.get("every", callback.eval_steps)
        self.log(f"Resuming with {max(0.0, self.resolved.time_budget_s - used) / 60:.1f} of the "
                 f"{self.resolved.time_budget_s / 60:g}-minute budget left.")

    def _finish(self, trainer, callback, result) -> Ended:
        """6. Keep the best adapter, save it with the tokenizer and the label map; say how the run ended."""
        self.report.phase = "saving"
        # Mixed precision wrapped the model's forward in autocast: the model kept for evaluation computes in its own
        # dtype again, as a reloaded adapter does.
        self.model = trainer.accelerator.unwrap_model(self.model, keep_fp32_wrapper=False)
        if self.backend["device"] == "cpu" and self.model.dtype.itemsize < 4:
            self.model.float()  # bfloat16 weights on a CPU: scored in float32, as the reloaded run is
        step = trainer.state.global_step
        kept = self.adapter_step = self.kept.restore(self.model, step, getattr(self.callback, "latest", None),
                                                     len(self.prepared.labels), self.log)
        self.save_adapter()
        state = "stopped" if callback.stop_reason == "requested" else "finished"
        losses = [r["loss"] for r in self.stream.records("train") if r.get("loss") is not None]
        self.recorder.phase("train")
        self.model.eval()
        return Ended(state, {"step": step, "max_steps": self.total_steps,
                             "final_loss": losses[-1] if losses else None,
                             "train_runtime_s": round(result.metrics.get("train_runtime", 0), 2),
                             "stop_reason": callback.stop_reason, "adapter_step": kept,
                             "best_eval": {k: v for k, v in (callback.best or {}).items() if k != "weights"} or None},
                     f"{state.capitalize()} at step {step}"
                     + (f" ({callback.stop_reason})" if callback.stop_reason not in (None, "requested") else "")
                     + f"; adapter (step {kept}) saved to {self.run.adapter}.")

    def _stop_before_training(self) -> Ended:
        """Stop pressed before the first step: nothing trained, so no adapter; the run is kept as stopped."""
        step = self.run.status().get("step", 0) if self.resume_from else 0
        words = (f"Stopped before the first step ({self.report.phase}): nothing was trained"
                 + (f"; the run can still resume from {self.resume_from.name}." if self.resume_from else
                    ", so no adapter was saved."))
        self.model = None
        free_memory()
        return Ended("stopped", {"step": step, "max_steps": self.total_steps}, words)

    def _estimate_memory(self, loaded) -> None:
        """The estimate for what is about to train (real config, real row lengths), kept beside the measured peak."""
        try:
            self.memory_estimate, estimate, ram = estimate_for_run(self.train_config, loaded, self.backend,
                                                                   self.prepared.train_lengths)
        except Exception as exc:  # an estimate must never stop a run
            self.log(f"Memory estimate unavailable: {exc}")
            return
        self.log(f"Memory estimate: {estimate.summary()}." if ram is None else
                 f"Memory estimate (RAM): {ram.summary()}.")
        if estimate.share and estimate.share > BANDS[1][0]:
            self.warnings = _unique(self.warnings + [
                f"Memory estimate {estimate.summary()}. If it runs out of memory, the Model & LoRA tab lists the "
                "levers with their estimates."])

    def _on_checkpoint(self, step: int, max_steps: int, path: Path) -> None:
        """Mark the checkpoint complete (the trainer has saved all of it), and tell the job (which keeps
        status.json's step current for other processes: the Runs table)."""
        if not self.ranks.main:
            return
        spent = self.callback.spent_s() if self.callback is not None else None
        (path / CHECKPOINT_DONE).write_text(json.dumps({"step": step, "time": time.time(), "budget_used_s": spent}),
                                            encoding="utf-8")
        self.report.checkpointed(step, max_steps, path)

    def save_adapter(self) -> None:
        if self.ranks.main:
            save_adapter(self.run, self.model, self.tokenizer, self.prepared, self.config, self.backend.get("source"))


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))

