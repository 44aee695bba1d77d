"""The run's first classifier: the classic model (TF-IDF + logistic regression), fitted on the training rows in the
run's first seconds, its rule fitted and its figures cross-fitted on Val A as any evaluation's are, and kept with the
run (the classic model, the decision, eval.json), so that predict, serve, the Playground and the bundle have a
classifier while the LLM trains. The LLM's evaluation then has the LLM, this model and their blend compete, as
always, and its decision replaces this one."""

from __future__ import annotations

import threading
import time

from studio.classifier.calibration import class_priors
from studio.data.prepare import PreparedData
from studio.evaluate import baselines
from studio.evaluate.evaluation import Evaluation, SetScores
from studio.evaluate.saved_run import keep_with_run, prepare_for_run
from studio.runs.folder import RunDir


def first_evaluation(prepared: PreparedData, classic_model=None, facts: dict | None = None) -> Evaluation | None:
    """The classic model alone on Val A and Val B (``classic_model``: one already fitted on the training rows), its
    rule and figures decided as an evaluation decides them; None without Val A rows to decide on."""
    frames = {"val_a": prepared.split.val_a, "val_b": prepared.split.val_b}
    train = prepared.split.train
    if not len(frames["val_a"]) or not len(train):
        return None
    labels, minority = prepared.labels, prepared.table.minority_label
    evaluation = Evaluation(labels=labels, codes=prepared.codes, minority=minority, mode="score",
                            sets={name: SetScores(frame, None) for name, frame in frames.items()},
                            conflicts=prepared.table.conflicts, out_of_scope=prepared.out_of_scope,
                            unsure=prepared.unsure, priors=class_priors(prepared.counts(), labels))
    found = baselines.baselines(train, frames, labels, minority, model=classic_model,
                                out_of_scope=prepared.out_of_scope)
    evaluation.classic_model = found.pop("model")
    evaluation.references = found
    evaluation.decide()
    evaluation.first = {"training_rows": len(train), "rubric": prepared.rubric, **(facts or {})}
    return evaluation


def keep_first(run: RunDir, prepared: PreparedData, write_record=None, log=print) -> Evaluation | None:
    """Fit, evaluate and keep the run's first classifier; ``write_record(**fields)``: how the run record is written
    (a training run's recorder, which holds the record whole), default the run folder's own update."""
    started = time.perf_counter()
    evaluation = first_evaluation(prepared)
    if evaluation is None:
        log("No first classifier: the data has no Val A rows to judge a classic model on.")
        return None
    evaluation.first["seconds"] = round(time.perf_counter() - started, 2)
    created = run.record().get("created")
    if created:  # what the person waited: from Start (the run's creation) to a classifier they can use
        evaluation.first["after_start_s"] = round(time.time() - created, 1)
    report = evaluation.report()
    run.save_classic(evaluation.classic_model)  # the one in use, fitted on the training rows (the figures' own)
    keep_with_run(run, evaluation, report, write_record=write_record)
    figures = report["chosen"]["val_a"]
    log(f"First classifier ready {evaluation.first.get('after_start_s', evaluation.first['seconds']):.1f} s after "
        f"Start: the classic model (TF-IDF + logistic regression), cross-fitted Val A macro-F1 "
        f"{figures['macro_f1']:.3f}. Predict, serve, the Playground and the bundle use it while the LLM trains; the "
        "LLM's evaluation then picks the best of the LLM, this model and their blend.")
    return evaluation


def keep_first_in_background(run: RunDir, prepared: PreparedData, write_record=None, log=print) -> threading.Thread:
    """``keep_first`` in a thread beside the model's loading and the training (seconds of two cores' time); a
    failure is logged, never the run's."""
    def work():
        try:
            keep_first(run, prepared, write_record, log)
        except Exception as exc:  # the LLM run goes on; its own evaluation fits the classic model again
            log(f"Warning: the first classifier (the classic model) could not be made: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=work, name="first-classifier", daemon=True)
    thread.start()
    return thread


def evaluate_first(run: RunDir, log=print) -> tuple[Evaluation, dict]:
    """The Evaluate tab's view of a run whose LLM is still training: its first classifier as kept (the saved
    classic model on the run's own Val A and Val B; nothing written)."""
    from studio.models.loading import load_tokenizer  # (transformers: the run's tokenizer, as training prepared)

    config = run.config()
    prepared, notes = prepare_for_run(run, load_tokenizer(config.model.name, log=log))
    evaluation = first_evaluation(prepared, run.load_classic(), facts=(run.classifier() or {}).get("first"))
    evaluation.context["notes"] = notes
    return evaluation, evaluation.report()
