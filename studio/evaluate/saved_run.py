"""Evaluation of a saved run (base + adapter): on its own Val A and Val B (the same recipe and seed), or on another
labelled file; the report, the disagreements and the calibration are kept with the run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from studio.data.prepare import PreparedData, file_sha256, prepare_data
from studio.data.split import Split
from studio.errors import StudioError
from studio.evaluate import classic
from studio.evaluate.calibration import class_priors
from studio.evaluate.evaluation import Evaluation, evaluate_model
from studio.models.trained import load_run_model
from studio.runs.folder import RunDir
from studio.runs.jobs import refuse_while_training

SUMMARY_METRICS = ("accuracy", "macro_f1", "minority_recall")


def prepare_for_run(run: RunDir, tokenizer, data: str | None = None) -> tuple[PreparedData, list[str]]:
    """The run's own Val A / Val B (same recipe and seed), or a separate labelled file: Val A = the whole file at
    its natural ratio, Val B = a balanced sample of it."""
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
    n = int(frame["label"].value_counts().min())
    balanced = frame.groupby("label", group_keys=False).sample(n=n, random_state=recipe.split_seed)
    prepared.codes = {lb: known[lb] for lb in known}
    prepared.rubric = run.record().get("rubric") or prepared.rubric
    prepared.split = Split(train=frame.iloc[0:0], val_a=frame.reset_index(drop=True),
                           val_b=balanced.sort_values("row").reset_index(drop=True))
    return prepared, notes


def evaluate_run(run_dir: str | Path, runs_dir: str | Path = "runs", *, data: str | None = None,
                 mode: str = "score", untrained: bool = True, include_train: bool = False,
                 threshold: float | None = ..., loaded=None, log=print, progress=None) -> tuple[Evaluation, dict]:
    """Evaluate a saved run; on its own sets the report (eval.json), the disagreements, a summary in the run record
    and the calibration on the adapter card are kept with the run."""
    run = RunDir.open(run_dir, runs_dir)
    refuse_while_training(run, "evaluate it")
    model, tokenizer, card = loaded or load_run_model(run, log=log)
    prepared, notes = prepare_for_run(run, tokenizer, data)
    t = run.threshold() if threshold is ... else threshold
    config = run.config()
    priors = card["class_prior"] if "class_prior" in card else class_priors(config.data.counts, prepared.labels)
    log(f"Scoring {sum(len(f) for f in (prepared.split.val_a, prepared.split.val_b))} validation rows...")
    evaluation = evaluate_model(model, tokenizer, prepared, mode=mode, untrained=untrained,
                                include_train=include_train, threshold=t, priors=priors, base_key=base_identity(card),
                                references=data is None, progress=progress)
    if data is not None:  # the classic model learns from the run's own training rows, as the LLM did
        own = prepare_for_run(run, tokenizer)[0]
        evaluation.references = classic.baselines(own.split.train, {"val_a": prepared.split.val_a,
                                                                    "val_b": prepared.split.val_b},
                                                  prepared.labels, evaluation.minority)
    report = evaluation.report()
    report["notes"] = notes
    report["data"] = str(data) if data else config.data.path
    if data is None:
        keep_with_run(run, evaluation, report)
    return evaluation, report


def keep_with_run(run: RunDir, evaluation: Evaluation, report: dict) -> None:
    """eval.json, disagreements.csv, the summary the Runs table shows, and the temperature and priors that predict,
    the Playground and the exports apply."""
    run.write_evaluation(report)
    run.write_table("disagreements.csv", evaluation.disagreements())
    summary = {name: {k: report[name][k] for k in SUMMARY_METRICS} for name in ("val_a", "val_b")}
    if "classic_baseline" in report:
        summary["classic_val_a"] = {k: report["classic_baseline"]["val_a"][k] for k in SUMMARY_METRICS}
    run.update_record(eval_summary=summary)
    if evaluation.mode == "score":
        run.update_adapter_card(temperature=round(float(evaluation.temperature), 6), class_prior=evaluation.priors)


def base_identity(card: dict) -> str:
    """What the untrained model's scores depend on: its name and, for a folder, when its weights last changed."""
    source = card.get("base_source") or ""
    stamp = ""
    if source and Path(source).exists():
        stamp = ",".join(f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(Path(source).glob("*.safetensors")))
    return f"{card.get('base_model')}|{source}|{stamp}"
