"""Evaluation of a saved run (base + adapter): on its own Val A and Val B (the same recipe and seed), or on another
labelled file; the report, the disagreements and the calibration are kept with the run."""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future
from pathlib import Path

from studio.data.prepare import PreparedData, file_sha256, prepare_data
from studio.data.split import Split
from studio.errors import StudioError
from studio.classifier.calibration import class_priors
from studio.classifier.classic import fit_in_background
from studio.evaluate.evaluation import Evaluation, evaluate_model
from studio.models.trained import load_run_model
from studio.runs.folder import RunDir
from studio.runs.jobs import refuse_while_training

SUMMARY_METRICS = ("accuracy", "macro_f1", "minority_recall")


def prepare_for_run(run: RunDir, tokenizer, data: str | None = None) -> tuple[PreparedData, list[str]]:
    """The run's own Val A / Val B (same recipe and seed), or a separate labelled file, a test set: scored once, all
    its rows in Val A (named after the file), no Val B drawn from it."""
    config = run.config()
    recipe = dataclasses.replace(config.data)
    notes = []
    if data is None:
        if recipe.sha256 and Path(recipe.path).exists() and file_sha256(recipe.path) != recipe.sha256:
            notes.append(f"The data file {recipe.path} changed since training: Val A/B may include rows the model "
                         "was trained on.")
        return prepare_data(recipe, tokenizer, config.model.max_seq_length), notes
    recipe.path, recipe.text_column, recipe.label_column, recipe.counts = str(data), "", "", {}
    known = dict(config.data.label_codes)
    recipe.label_codes = {}
    prepared = prepare_data(recipe, tokenizer, config.model.max_seq_length)
    unknown = [lb for lb in prepared.labels if lb not in known]
    if unknown:
        raise StudioError(f"{os.path.basename(str(data))} has labels this model was not trained on: "
                          f"{', '.join(map(repr, unknown))}. Known labels: {', '.join(map(repr, known))}.")
    frame = prepared.table.frame
    prepared.codes = {lb: known[lb] for lb in known}
    prepared.rubric = run.record().get("rubric") or prepared.rubric
    prepared.split = Split(train=frame.iloc[0:0], val_a=frame.reset_index(drop=True), val_b=frame.iloc[0:0])
    return prepared, notes


def evaluate_run(run_dir: str | Path, runs_dir: str | Path = "runs", *, data: str | None = None,
                 mode: str = "score", untrained: bool = True, include_train: bool = False,
                 threshold: float | None = ..., use: str | None = ..., loaded=None, log=print,
                 progress=None) -> tuple[Evaluation, dict]:
    """Evaluate a saved run. On its own sets: the three candidates decided on Val A (``use``: "llm", "classic" or
    "blend" to override the choice, "auto" to drop an override; default: the override saved before, if any), and the
    report, the disagreements, the decision, the classic model and the LLM's rule kept with the run. On another
    labelled file (``data``): the run's saved rules and choice applied to it, nothing fitted on it."""
    run = RunDir.open(run_dir, runs_dir)
    refuse_while_training(run, "evaluate it")
    model, tokenizer, card = loaded or load_run_model(run, log=log)
    before = run.classifier()
    if data is not None and mode == "score" and (before is None or before.get("first")):
        # never evaluated, or only its first classifier (the classic model alone): the LLM's own sets come first
        log("This run has not been evaluated on its own validation sets yet: doing that first (its rules and its "
            "choice come from there).")
        evaluate_run(run.path, runs_dir, mode=mode, untrained=False, loaded=(model, tokenizer, card), log=log,
                     progress=progress)
    prepared, notes = prepare_for_run(run, tokenizer, data)
    t = run.threshold() if threshold is ... else threshold
    saved = run.classifier()
    if use is ...:
        use = (saved or {}).get("override")
    config = run.config()
    priors = card["class_prior"] if "class_prior" in card else class_priors(config.data.counts, prepared.labels)
    log(f"Scoring {sum(len(f) for f in (prepared.split.val_a, prepared.split.val_b))} validation rows...")
    own = prepare_for_run(run, tokenizer)[0] if data is not None else prepared
    classic_model, fits = run.load_classic(held_out=data is None), None
    if data is None and not run.has_classic_in_use():  # both classic models fit while the LLM scores
        fits = fit_in_background(own.split.train, own.split.val_a, own.split.val_b, model=classic_model)
    evaluation = evaluate_model(model, tokenizer, prepared, mode=mode, untrained=untrained,
                                include_train=include_train, threshold=t, priors=priors, base_key=base_identity(card),
                                reference_rows=own.split.train, classic_model=fits or classic_model,
                                use=None if use == "auto" else use, decide=data is None, progress=progress)
    if data is not None and saved and mode == "score":
        evaluation.replay(saved, where=f"on {Path(data).name}")
    context = evaluation.context  # kept with the scores: every report made from them (a page's redraws) has it
    if evaluation.classic_model is not None and (data is None or run.has_classic_in_use()):
        split = own.split
        context["classic_in_use"] = {"rows": len(split.train) + len(split.val_a) + len(split.val_b),
                                     "held_out_rows": len(split.train), "this_file": data is not None}
    context.update(notes=notes, training=training_facts(run), data=str(data) if data else config.data.path)
    if data is not None:  # the verdicts speak of the file scored, not of "Val A"; scored once: no Val B from it
        context.update(test_file=Path(data).name, set_names={"val_a": f"{Path(data).name} (test set)",
                                                             "val_b": "Val B: none (a test file is scored once)"})
    report = evaluation.report()
    if data is None:
        keep_with_run(run, evaluation, report, fits)
    return evaluation, report


def training_facts(run: RunDir) -> dict:
    """How far training went: passes over the training rows, and whether the time budget ended it (a paced run that
    stopped before the trainer's own last step, or the budget's stop)."""
    record, status, last = run.record(), run.status(), run.last_logged()
    pace = (record.get("resolved") or {}).get("pace") or {}
    step = status.get("step") or 0
    ended_by_budget = status.get("stop_reason") == "time budget" or (bool(pace) and step < pace.get("limit", 0)
                                                                      and status.get("stop_reason") is None)
    return {"epochs": last.get("epoch"), "steps": step,
            "budget_minutes": (record.get("resolved") or {}).get("time_budget_minutes"),
            "ended_by_budget": ended_by_budget}


def keep_with_run(run: RunDir, evaluation: Evaluation, report: dict, fits: Future | None = None,
                  write_record=None) -> None:
    """eval.json, disagreements.csv, the summary the Runs table shows, the decision, the classic model that predict,
    the Playground and the bundle use (``fits``: fitted on every labelled row, beside the one of the figures), and
    the LLM's rule that its own exports apply. ``write_record(**fields)``: how the run record is written (default
    the run folder's update; a training run's first classifier goes through its recorder)."""
    if fits is not None and evaluation.classic_model is not None:
        held_out, every_row = fits.result()
        run.save_classic(every_row, held_out)
    run.write_evaluation(report)
    run.write_table("disagreements.csv", evaluation.disagreements())
    summary = {name: {k: report[name][k] for k in SUMMARY_METRICS} for name in ("val_a", "val_b") if name in report}
    if "classic_baseline" in report:
        summary["classic_val_a"] = {k: report["classic_baseline"]["val_a"][k] for k in SUMMARY_METRICS}
    if "chosen" in report:
        summary["chosen_val_a"] = {"name": report["chosen"]["name"],
                                   **{k: report["chosen"]["val_a"][k] for k in SUMMARY_METRICS}}
    fields = {"eval_summary": summary}
    if evaluation.decision is not None:
        fields["classifier"] = evaluation.decision_record()
    (write_record or run.update_record)(**fields)
    if evaluation.decision is not None and "llm" in evaluation.decision.rules:
        llm = evaluation.decision.rules["llm"]
        run.update_adapter_card(temperature=round(float(llm.temperature), 6), class_prior=evaluation.priors,
                                prior_strength=llm.prior_strength)


def base_identity(card: dict) -> str:
    """What the untrained model's scores depend on: its name and, for a folder, when its weights last changed."""
    source = card.get("base_source") or ""
    stamp = ""
    if source and Path(source).exists():
        stamp = ",".join(f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(Path(source).glob("*.safetensors")))
    return f"{card.get('base_model')}|{source}|{stamp}"
