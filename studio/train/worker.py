"""The background training worker: one run at a time per process, readable as the guide's steps.

``start_training`` checks the config and the data in the caller's thread (so bad input is an immediate, clear
error), creates the run folder and starts a thread that runs the recipe in ``TrainingJob._train``:
load the model (backend, base model, LoRA) → prepare the data → build the trainer → train → finish (save the adapter).
Each phase records what it learnt in the run record once (``studio.runs.recorder``). The faces only read
``job.snapshot()`` and call ``job.stop()``, through the door; the worker never touches either of them.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Callable

from studio.config import EMBEDDED_MODEL, RunConfig, effective_checkpointing, rows_per_step, total_steps
from studio.data.formatting import answer_ids, prefix_ids
from studio.data.prepare import PreparedData, file_sha256, prepare_data
from studio.data.table import LabeledTable
from studio.errors import StudioError, is_disk_full
from studio.estimate.model_shape import read_shape
from studio.estimate.plan import Preflight, memory_share, preflight, row_cost
from studio.estimate.recipe import budget_steps, eval_every, resolve, step_warnings
from studio.estimate.vram import BANDS
from studio.classifier.calibration import class_priors
from studio.evaluate.periodic import CLEARLY_BETTER, PeriodicEvaluator, share_earlier_better
from studio.machine import device_description, has_module, import_stack, join_process_group, library_versions, ranks
from studio.models.embedded import HUB_ID
from studio.models.loading import (choose_backend, load_for_training, load_tokenizer,
                                   resolve_source)
from studio.models.trained import let_go_beside
from studio.runs import jobs
from studio.files import write_json_atomic
from studio.runs.folder import CHECKPOINT_DONE, RunDir, default_run_name, write_adapter_card
from studio.runs.recorder import RunRecorder
from studio.runs.stream import MetricsStream
from studio.train.distributed import broadcast
from studio.train.memory import (OOM_LEVERS, drop_frames, estimate_for_run, free_memory, is_out_of_memory,
                                 measured_peak, memory_record, reset_peak_memory)
from studio.train.pacing import Pacer
from studio.train.sft import Objective, sft_args, sft_trainer_class
from studio.train.timing import measure_step_seconds, record_speed

# Imported inside the steps that need them, after the backend is chosen: transformers, trl and datasets (unsloth must
# patch the stack before any of them is imported).


class _LogCapture(logging.Handler):
    """Library warnings (transformers, trl, peft, unsloth) go to the run's log too."""

    def __init__(self, job: "TrainingJob"):
        super().__init__(level=logging.WARNING)
        self.job = job

    def emit(self, record):
        self.job.log(f"[{record.name}] {record.getMessage()}")


class TrainingJob(jobs.SnapshotMixin):
    def __init__(self, config: RunConfig, run: RunDir, checked: Preflight, resume_from: Path | None,
                 callbacks: list, evaluator_factory: Callable | None):
        self.config, self.run, self.warnings = config, run, list(checked.warnings)
        self.table = checked.table  # the data file as Start read and checked it: the sets are prepared from it
        self.resume_from, self.callbacks = resume_from, callbacks
        self.evaluator_factory = evaluator_factory or PeriodicEvaluator
        self.ranks = ranks()
        self.recorder = RunRecorder(run, config)
        self.stream = MetricsStream(run.metrics_path if self.ranks.main else None)
        self.earlier: list[dict] = []  # a resumed run's records up to its checkpoint: the charts show the whole run
        if resume_from is not None:
            done = int(resume_from.name.rsplit("-", 1)[-1])
            self.earlier = [r for r in MetricsStream.read(run.metrics_path) if r.get("step", 0) <= done]
        self.stop_event = threading.Event()
        self.state = "starting"
        self._phase = "starting"
        self.error: str | None = None
        self.error_kind: str | None = None
        self.levers: list[str] = []
        self.backend: dict = {}
        self.total_steps: int | None = None
        self.started = time.time()
        self.finished: float | None = None
        self.model = self.tokenizer = None  # kept after training for evaluation in memory
        self.prepared: PreparedData | None = None
        self.adapter_step: int | None = None  # the step whose adapter is kept, once training ended
        self.memory_estimate: dict | None = None  # "Will it fit?" for this run, from the loaded model's config
        self.resolved = None  # the recipe with the auto settings decided (studio.estimate.recipe)
        self.train_config = config  # the config as trained: the resolved one once decided
        self.best: dict | None = None  # the best periodic evaluation's step, macro-F1 and adapter weights
        self.evaluator = None  # the periodic evaluation, built with the trainer
        self.callback = None  # the trainer's StudioCallback (its time budget, its pace)
        self.gpu_in_use_at_start_gb = 0.0  # GPU memory the process held before this run (other models)
        self._log_lines: deque[str] = deque(maxlen=400)
        self._log_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"studio-train-{run.name}", daemon=True)

    # ---- what the faces use ------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        with self._log_lock:
            self._log_lines.append(line)
            if not self.ranks.main:
                return
            try:
                with open(self.run.log_path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError:  # a full disk: the log lives on in memory and in the UI
                pass

    def log_tail(self, lines: int = 40) -> str:
        with self._log_lock:
            return "\n".join(list(self._log_lines)[-lines:])

    def stop(self) -> None:
        if not self.done:
            self.stop_event.set()
            self.log("Stop requested.")

    def wait(self, timeout: float | None = None) -> bool:
        """True once the worker thread has ended, not merely once the state says done: the thread still records
        memory and drops the trainer after that, and a CLI that exited then would kill a daemon thread inside
        torch."""
        self.thread.join(timeout)
        return self.done and not self.thread.is_alive()

    @property
    def done(self) -> bool:
        return self.state in jobs.ENDED

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, phase: str) -> None:
        """What the worker does now (loading model, measuring speed, training...), in status.json too with the
        steps planned so far: the web app reads both there when its run trains in a child process."""
        self._phase = phase
        if self.ranks.main:
            try:
                self.run.note_status(phase=phase, max_steps=self.total_steps)
            except OSError:  # a full disk: the phase lives on in memory, and the failure says why
                pass

    def live(self) -> jobs.LiveState:
        return jobs.LiveState(
            state=self.state, phase=self.phase, started=self.started, finished=self.finished,
            total_steps=self.total_steps, backend=self.backend, warnings=self.warnings, error=self.error,
            error_kind=self.error_kind, levers=self.levers, stop_requested=self.stop_event.is_set(),
            gpus=self.ranks.world_size, rows_per_step=rows_per_step(self.train_config.train, self.ranks.world_size),
            memory_estimate=self.memory_estimate, gpu_in_use_at_start_gb=self.gpu_in_use_at_start_gb,
            best_eval=None if self.best is None else {k: v for k, v in self.best.items()
                                                      if k not in ("weights", "predictions")},
            adapter_step=self.adapter_step, time_budget_s=self.resolved.time_budget_s if self.resolved else None,
            batch=(self.train_config.train.per_device_train_batch_size,
                   self.train_config.train.gradient_accumulation_steps))

    # ---- the worker thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        capture = _LogCapture(self)
        loggers = [logging.getLogger(n) for n in ("transformers", "trl", "peft", "unsloth")]
        for lg in loggers:
            lg.addHandler(capture)
        try:
            self.state = "running"
            self._train()
        except Exception as exc:  # every failure is kept on disk and shown; the process lives on
            self._fail(exc)
        finally:
            for lg in loggers:
                lg.removeHandler(capture)
            try:
                self._record_memory()
            except OSError as exc:  # e.g. a full disk: the run's state is already recorded
                self.log(f"Could not write memory.json: {exc}")
            if self.state == "failed":
                free_memory()  # again, now that the exception and its traceback are gone
            self.finished = time.time()
            jobs.release()

    def _train(self) -> None:
        """The recipe: the guide's steps, one method each."""
        backend = self._choose_backend()
        prepared = self._prepare_data(backend)
        self._resolve(backend, prepared)
        loaded, optim = self._load_model(backend)
        if self.stop_event.is_set():
            return self._stop_before_training()
        trainer, callback = self._build_trainer(loaded, backend, optim)
        if self.stop_event.is_set():
            return self._stop_before_training()
        result = self._fit(trainer, callback, loaded)
        self._finish(trainer, callback, result)

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
        self.phase = "reading the data"
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
        shape, fits = self._fits(backend, prepared)
        resolved = resolve(self.config, device=backend.device, params=shape.params if shape else None,
                           train_rows=len(prepared.train), fits=fits,
                           cost=row_cost(prepared.train_lengths, prepared.train_classes(), self.config.train.seed))
        if self.resume_from is not None:  # a resumed run keeps the plan it started with
            planned = self.recorder.record.get("resolved") or {}
            for key in ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
                        "eval_steps", "max_steps"):
                if planned.get(key) is not None:
                    setattr(resolved.config.train, key, planned[key])
            if planned.get("load_in_4bit") in ("true", "false"):  # the weights it trained on, whatever fits now
                resolved.config.model.load_in_4bit = planned["load_in_4bit"]
            if planned.get("pace"):  # a paced budget: the trainer's limit again, and the budget's rest (_fit)
                resolved.config.train.max_steps = planned["pace"]["limit"]
            else:
                resolved.time_budget_s = None
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

    def _fits(self, backend, prepared):
        """(shape, share-of-memory function) for the auto micro-batch: of the GPU, or of the RAM on a CPU."""
        try:
            shape, pre_quantized = read_shape(resolve_source(self.config.model.name, log=self.log))
        except Exception:  # the size is a hint for the learning rate; the run does not need it
            return None, None
        if shape is None:
            return None, None
        return shape, memory_share(self.config, shape, backend.device, prepared.train_lengths, backend=backend.name,
                                   pre_quantized=pre_quantized,  # without bitsandbytes a 4-bit choice loads 16-bit
                                   four_bit_available=has_module("bitsandbytes"))

    def _load_model(self, backend):
        """3. The base model + tokenizer, the LoRA adapter attached."""
        cfg = self.train_config
        self.phase = "loading model"
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
        self.phase = "formatting data"
        datasets.disable_progress_bars()  # the phase, the log and the UI say what happens; no bars in the terminal
        train_set = datasets.Dataset.from_list(prepared.tokenized(loaded.tokenizer))  # tokenized as scoring reads
        self.log(f"Tokenizing {len(train_set)} training rows through the chat template.")
        gpus = self.ranks.world_size
        self.total_steps = total_steps(cfg.train, len(train_set), gpus)
        objective = self._objective(loaded, backend)
        args = SFTConfig(**sft_args(cfg, output_dir=self.run.checkpoints, optim=optim, dtype=loaded.dtype,
                                    device=backend.device, autocast=loaded.autocast))
        self.evaluator = self.evaluator_factory(prepared, loaded.tokenizer, cfg)
        callback = StudioCallback(self.stream, self.stop_event, evaluator=self.evaluator,
                                  eval_steps=max(0, cfg.train.eval_steps), log=self.log,
                                  patience=cfg.train.early_stopping_patience, on_best=self._keep_best,
                                  budget_s=self.resolved.time_budget_s, checkpoint_s=60 * cfg.train.checkpoint_minutes)
        callback.on_replan = self._replanned
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
        """The loss's view of the task: each code's first answer token, and the shared prompt prefix where the
        backend can run it once per micro-batch."""
        cfg, prepared, tokenizer = self.train_config, self.prepared, loaded.tokenizer
        first = [answer_ids(tokenizer, prepared.rubric, prepared.prompt_format, code)[0]
                 for code in prepared.codes.values()]
        name = cfg.train.objective
        if "codes" in name and len(set(first)) < len(first):
            name = "next_token"
            self.log("Notice: some codes start with the same token, so the loss cannot choose among the codes at "
                     "the first token; training with the next-token loss only (rename the codes to fix this).")
        why_not = ("the Unsloth backend" if backend.name == "unsloth" else "several processes"
                   if self.ranks.distributed else "gradient checkpointing" if self.backend["gradient_checkpointing"]
                   != "false" else None)
        share = cfg.train.share_prompt_prefix and why_not is None
        if cfg.train.share_prompt_prefix and why_not:
            self.log(f"The prompt prefix is run per row ({why_not} needs it).")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        objective = Objective(name, first, pad, prefix_ids(tokenizer, prepared.rubric, prepared.prompt_format)
                              if share else None, classes=prepared.train_classes())
        self.backend.update(objective=name, shared_prefix_tokens=len(objective.prefix_ids or []))
        return objective

    def _fit(self, trainer, callback, loaded):
        """5. Train: within a time budget, the steps are planned from a measured step time first."""
        cfg = self.train_config
        gpus = self.ranks.world_size
        rows = len(trainer.train_dataset)
        if self.resolved.time_budget_s and self.resume_from is None:
            self.phase = "measuring speed"
            self._plan_for_budget(trainer, callback, loaded, rows)
        elif self.resolved.time_budget_s:
            self._pace_resumed(callback)
        elif cfg.train.eval_steps < 0:
            callback.eval_steps = eval_every(self.total_steps)
        pace = {"pace": callback.pacer.to_dict()} if callback.pacer else {}
        self.recorder.phase("plan", resolved={**self.resolved.to_dict(), "max_steps": self.total_steps,
                                              "eval_steps": callback.eval_steps, **pace})
        self.phase = "training"
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
        eval_rows = min(cfg.eval_max_rows, len(self.prepared.split.val_a)) if cfg.eval_steps and timed else 0
        score_s = timed(loaded.model) if eval_rows else 0.0
        step_s = measure_step_seconds(trainer, loaded.autocast) * cfg.gradient_accumulation_steps
        row_s = step_s / max(1, cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps)
        steps, every = budget_steps(self.resolved.time_budget_s, step_s, eval_rows, score_s, self.total_steps)
        if cfg.eval_steps >= 0:
            every = cfg.eval_steps
        self.log(f"Measured {step_s:.2f} s per step ({1 / row_s:.1f} rows/s)"
                 + (f" and {1 / score_s:.1f} rows/s scored" if score_s else "") + f": {steps} of {self.total_steps} "
                 f"planned steps fit the {self.resolved.time_budget_s / 60:g}-minute budget"
                 + (f" with an evaluation of {eval_rows} rows every {every} steps" if every else "") + ".")
        record_speed(self.config, self.backend, row_s)
        # The trainer keeps its own last step (the epochs: the most the plan can reach); the pacer moves the run's
        # end, and the schedule's, as the measured speed changes.
        callback.pacer = Pacer(self.resolved.time_budget_s, self.total_steps, step_s, eval_rows * score_s,
                               every if cfg.eval_steps else 0)
        self.total_steps = steps
        callback.eval_steps = every if cfg.eval_steps else 0
        planned = copy.deepcopy(self.train_config.train)
        planned.max_steps = self.total_steps
        self._warn(step_warnings(planned, rows, self.ranks.world_size))

    def _pace_resumed(self, callback) -> None:
        """A resumed run with a time budget goes on with the budget it has left, paced as it was."""
        pace = (self.recorder.record.get("resolved") or {}).get("pace") or {}
        marker = self.resume_from / CHECKPOINT_DONE
        used = (json.loads(marker.read_text(encoding="utf-8")).get("budget_used_s") or 0.0) if marker.exists() else 0.0
        callback.pacer = Pacer(self.resolved.time_budget_s, self.total_steps, pace.get("step_s") or 1.0,
                               pace.get("eval_s", 0.0), pace.get("every", 0), used_s=used)
        callback.eval_steps = pace.get("every", callback.eval_steps)
        self.log(f"Resuming with {max(0.0, self.resolved.time_budget_s - used) / 60:.1f} of the "
                 f"{self.resolved.time_budget_s / 60:g}-minute budget left.")

    def _replanned(self, last: int) -> None:
        self.total_steps = last

    def _keep_best(self, model, step: int, metrics: dict) -> None:
        """The best adapter so far (by the periodic Val A macro-F1), kept in memory: it is saved at the end when it
        is clearly better than the last one."""
        self.best = {"step": step, "macro_f1": metrics.get("macro_f1"), "predictions": metrics.get("predictions"),
                     "weights": {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
                                 if p.requires_grad}}

    def _finish(self, trainer, callback, result) -> None:
        """6. Keep the best adapter, save it with the tokenizer and the label map; record the end."""
        self.phase = "saving"
        # Mixed precision wrapped the model's forward in autocast: the model kept for evaluation computes in its own
        # dtype again, as a reloaded adapter does.
        self.model = trainer.accelerator.unwrap_model(self.model, keep_fp32_wrapper=False)
        step = trainer.state.global_step
        kept = self.adapter_step = self._restore_best(step)
        self.save_adapter()
        state = "stopped" if callback.stop_reason == "requested" else "finished"
        losses = [r["loss"] for r in self.stream.records("train") if r.get("loss") is not None]
        self.run.set_status(state, step=step, max_steps=self.total_steps, final_loss=losses[-1] if losses else None,
                            train_runtime_s=round(result.metrics.get("train_runtime", 0), 2), finished=time.time(),
                            stop_reason=callback.stop_reason, adapter_step=kept,
                            best_eval={k: v for k, v in (callback.best or {}).items() if k != "weights"} or None)
        self.recorder.phase("train")
        self.log(f"{state.capitalize()} at step {step}"
                 + (f" ({callback.stop_reason})" if callback.stop_reason not in (None, "requested") else "")
                 + f"; adapter (step {kept}) saved to {self.run.adapter}.")
        self.phase = state
        self.state = state
        self.model.eval()

    def _restore_best(self, step: int) -> int:
        """Put the best periodic evaluation's adapter weights back when it is clearly better than the last adapter
        (on the periodic sample's rows; an evaluation without rows: when it is the best); returns the step whose
        adapter is kept."""
        best, latest = self.best, getattr(self.callback, "latest", None)
        if best is None or best["step"] == step:
            return step
        sure = share_earlier_better(best, latest, len(self.prepared.labels))
        if sure is not None and latest["macro_f1"] is not None and latest["macro_f1"] >= best["macro_f1"]:
            self.log(f"Keeping the last adapter (step {step}): the latest periodic evaluation (step {latest['step']}, "
                     f"Val A sample macro-F1 {latest['macro_f1']:.3f}) is as good as the best (step {best['step']}).")
            return step
        if sure is not None and sure < CLEARLY_BETTER:
            self.log(f"Keeping the last adapter (step {step}): the best periodic evaluation (step {best['step']}, Val "
                     f"A sample macro-F1 {best['macro_f1']:.3f}) beats the latest (step {latest['step']}, "
                     f"{latest['macro_f1']:.3f}) in {sure:.0%} of resamples of the sample's rows; an earlier adapter "
                     f"is kept only when it is clearly better ({CLEARLY_BETTER:.0%}).")
            return step
        import torch  # (loaded by the run already)

        with torch.no_grad():
            params = dict(self.model.named_parameters())
            for name, value in best["weights"].items():
                params[name].copy_(value.to(params[name].device))
        self.log(f"Keeping the best adapter: step {best['step']} (Val A sample macro-F1 {best['macro_f1']:.3f}), "
                 f"not the last, step {step}" + (f": it is better in {sure:.0%} of resamples of the sample's rows."
                                                 if sure is not None else "."))
        return best["step"]

    def _stop_before_training(self) -> None:
        """Stop pressed before the first step: nothing trained, so no adapter; the run is kept as stopped."""
        step = self.run.status().get("step", 0) if self.resume_from else 0
        self.run.set_status("stopped", step=step, max_steps=self.total_steps, finished=time.time())
        self.log(f"Stopped before the first step ({self.phase}): nothing was trained"
                 + (f"; the run can still resume from {self.resume_from.name}." if self.resume_from else
                    ", so no adapter was saved."))
        self.model = None
        free_memory()
        self.state = self.phase = "stopped"

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

    def _record_memory(self) -> None:
        """memory.json: the estimate and the measured peak side by side (every run, failed ones too)."""
        if not self.ranks.main:
            return
        rss = [r.get("rss_peak_gb") or r["rss_gb"] for r in self.stream.records("train") if r.get("rss_gb")]
        measured = measured_peak(self.backend.get("device"), self.gpu_in_use_at_start_gb, rss)
        self.run.write_memory(memory_record(self.memory_estimate, measured, self.state))

    def _on_checkpoint(self, step: int, max_steps: int, path: Path) -> None:
        """Mark the checkpoint complete (the trainer has saved all of it), and keep status.json's step current for
        other processes (the Runs table)."""
        if not self.ranks.main:
            return
        spent = self.callback.spent_s() if self.callback is not None else None
        (path / CHECKPOINT_DONE).write_text(json.dumps({"step": step, "time": time.time(), "budget_used_s": spent}),
                                            encoding="utf-8")
        self.run.set_status("running", step=step, max_steps=max_steps, last_checkpoint=str(path))

    def save_adapter(self) -> None:
        """Adapter weights + config + tokenizer + adapter card, written to a temporary folder and renamed into place."""
        if not self.ranks.main:
            return
        tmp = self.run.path / "adapter.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        _name_the_hub_base(tmp, self.config.model.name)
        prepared = self.prepared
        write_adapter_card(tmp, {
            "label_codes": prepared.codes, "rubric": prepared.rubric, "prompt_format": prepared.prompt_format,
            "base_model": self.config.model.name, "base_source": self.backend.get("source"),
            "max_seq_length": self.config.model.max_seq_length,
            "class_prior": class_priors(prepared.counts(), prepared.labels), "temperature": 1.0,
        })
        if self.run.adapter.exists():
            shutil.rmtree(self.run.adapter)
        tmp.rename(self.run.adapter)

    def _fail(self, exc: Exception) -> None:
        self.log("".join(traceback.format_exception(exc)).rstrip())
        self.error_kind, self.error, self.levers = self._describe_failure(exc)
        drop_frames(exc)  # frames hold the model, the batch and the optimizer: let that memory go
        self.model = None
        free_memory()
        checkpoint = self.run.last_checkpoint()
        self.state = self.phase = "failed"
        try:
            self.run.set_status("failed", error=self.error, error_kind=self.error_kind, levers=self.levers,
                                step=self._step(), max_steps=self.total_steps, finished=time.time(),
                                last_checkpoint=str(checkpoint) if checkpoint else None)
        except OSError as write_error:  # the disk may still be full: the UI has the error, the log tries too
            self.log(f"Could not write status.json: {write_error}")

    def _describe_failure(self, exc: Exception) -> tuple[str, str, list[str]]:
        """(kind, message for the person, levers): out of memory with the guide's levers, a full disk with what was
        kept, a user error as it is, anything else by its type."""
        if is_out_of_memory(exc):
            cfg = self.train_config
            return "oom", (f"Out of GPU memory at step {self._step()} (batch {cfg.train.per_device_train_batch_size}, "
                           f"max_seq_length {cfg.model.max_seq_length}, r={cfg.lora.r}). The app is still running; "
                           "try these levers in order: " + "; ".join(f"{i + 1}. {lv}" for i, lv in
                                                                      enumerate(OOM_LEVERS)) + "."), OOM_LEVERS
        if is_disk_full(exc, self.run.path):
            removed = self.run.remove_incomplete_checkpoints() if self.ranks.main else []
            last = self.run.last_checkpoint()
            return "disk", (f"The disk holding {self.run.path.parent} is full (while {self.phase}). "
                            + (f"The partial {', '.join(removed)} was removed. " if removed else "")
                            + (f"The last complete checkpoint, {last.name}, is intact: free some space, then resume "
                               "the run (Runs tab, or python -m studio train --resume " + self.run.name + ")."
                               if last else "Free some space and start the run again.")), []
        if isinstance(exc, StudioError):
            return "input", str(exc), []
        return "error", f"{type(exc).__name__}: {exc}".strip(), []

    def _step(self) -> int:
        last = self.stream.last("train")
        return last["step"] if last else 0


def _name_the_hub_base(adapter: Path, model_name: str) -> None:
    """An adapter of the embedded model names its hub id as the base (not this machine's cache folder), so the
    export's "how to run it" works on another machine (the studio itself reloads from the card's base_source)."""
    path = adapter / "adapter_config.json"
    if model_name == EMBEDDED_MODEL and path.exists():
        config = json.loads(path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = HUB_ID
        write_json_atomic(path, config)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---- starting a run -------------------------------------------------------------------------------------------
def start_training(config: RunConfig | None = None, runs_dir: str | Path = "runs", *,
                   resume: str | Path | None = None, callbacks: list | None = None,
                   evaluator_factory: Callable | None = None, into: str | Path | None = None,
                   table: LabeledTable | None = None) -> TrainingJob:
    """Start a run (or resume one from its last checkpoint) in a background thread.

    Raises StudioError at once when another run is training, the config is invalid or the data is unusable.
    ``evaluator_factory(prepared, tokenizer, config)``: the periodic evaluation (default: a Val A sample scored).
    ``into``: an empty run folder made beforehand, and ``table`` the data file as read and checked there (the web
    app's launcher, which names the folder before its child processes start: ``studio.train.child``). The data file
    is read once: here, or where ``table`` was read. Under ``accelerate launch`` every rank calls this; rank 0 makes
    the run folder and the others follow it.
    """
    with jobs.claimed():
        dist = ranks()
        if dist.distributed:
            join_process_group()
        if resume is not None:
            run, config, resume_from = _resume_target(resume, runs_dir)
        else:
            config, resume_from = copy.deepcopy(config or RunConfig()), None
        checked = preflight(config, table)  # unusable data fails here, before any model is loaded
        if resume is None:
            run = _new_run_folder(config, runs_dir, into, dist)
            config.name = run.name
            run.update_record(config, created=time.time(), versions=library_versions(),
                              device=device_description(), warnings=checked.warnings)
        run.set_status("running", step=run.status().get("step", 0), started=time.time(), error=None)
        previous = jobs.current()
        if previous is not None and previous.model is not None:
            previous.model = None  # the previous run's model (kept for evaluation in memory) makes way
            let_go_beside()  # and what was built on it (the Playground's classifier)
            free_memory()
        job = TrainingJob(config, run, checked, resume_from, list(callbacks or []), evaluator_factory)
        for warning in checked.warnings:
            job.log(f"Warning: {warning}")
        jobs.set_current(job)
        job.thread.start()
        return job


def _resume_target(resume, runs_dir) -> tuple[RunDir, RunConfig, Path]:
    """The run to resume, its config and its last complete checkpoint; refused when there is none or the data
    file changed since."""
    run = RunDir.open(resume, runs_dir)
    config = run.config()
    resume_from = run.last_checkpoint()
    if resume_from is None:
        raise StudioError(f"Run '{run.name}' has no checkpoint to resume from; start a new run instead.")
    recorded = config.data.sha256
    if recorded and Path(config.data.path).exists() and file_sha256(config.data.path) != recorded:
        raise StudioError(f"The data file {config.data.path} changed since run '{run.name}' started; "
                          "resuming would train on different rows. Start a new run.")
    return RunDir(run.path, readonly=not ranks().main), config, resume_from


def _new_run_folder(config: RunConfig, runs_dir, into, dist) -> RunDir:
    """A fresh run folder (rank 0 makes it; the other ranks of a multi-GPU run follow rank 0's)."""
    if into is not None:
        run = RunDir(Path(into))
        if dist.main and run.has_record():
            raise StudioError(f"{run.path} already holds a run; start a new one or resume it.")
    elif dist.main:
        run = RunDir.create(runs_dir, config.name or default_run_name(config.model.name, config.data.path))
    if dist.distributed:  # every rank follows rank 0's folder
        name = broadcast(run.name if dist.main else None)
        run = run if (dist.main or into is not None) else RunDir(Path(runs_dir) / name)
    return RunDir(run.path, readonly=not dist.main)
