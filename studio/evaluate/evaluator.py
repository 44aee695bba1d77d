"""Evaluation of a trained classifier: on the model right after training (in memory) or on a saved run
(base + adapter), on Val A (natural ratio) and Val B (balanced) side by side, beside the zero-shot baseline of the
same base model, a classic TF-IDF model and always answering the majority label; probabilities corrected to the
natural class mix and calibrated; binary thresholds; label-sanity disagreements; batch predictions; the periodic
evaluation hook.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from studio.config import RunConfig
from studio.data.prepare import PreparedData, file_sha256, prepare_data
from studio.errors import StudioError
from studio.evaluate import classic
from studio.evaluate.calibration import (best_threshold, cross_fitted_temperature, cross_fitted_threshold,
                                         fit_temperature, prior_correct, reliability, with_temperature)
from studio.evaluate.report import disagreements, pr_curve, predict_with_threshold, set_metrics, verdicts
from studio.evaluate.scoring import LabelScorer
from studio.train.jobs import refuse_while_training
from studio.train.runs import ADAPTER_META, RunDir, require_safetensors, run_minority_label, write_json_atomic

MODES = ("score", "generate")
SET_NAMES = {"val_a": "Val A (natural)", "val_b": "Val B (balanced)", "train": "Train"}


@dataclass
class SetScores:
    frame: pd.DataFrame  # text, label, row
    probs: np.ndarray  # (rows, classes): the model's probabilities as used (prior-corrected, calibrated); one-hot in
    # generate mode
    generated: list[str] | None = None  # generate mode: parsed labels (INVALID included)
    raw: np.ndarray | None = None  # the scorer's own probabilities, before prior correction and calibration


@dataclass
class Evaluation:
    labels: list[str]
    codes: dict[str, str]
    minority: str
    mode: str
    sets: dict[str, SetScores]
    baseline: dict[str, SetScores] | None = None
    conflicts: list[dict] = field(default_factory=list)
    threshold: float | None = None
    priors: dict | None = None  # {"train": [...], "natural": [...]} shares in label order: prior correction
    temperature: float = 1.0  # fitted on all of Val A: what predict, the playground and the exports use
    calibration: dict = field(default_factory=dict)
    reference: dict | None = None  # classic and majority baselines (studio.evaluate.classic.baselines)

    def predictions(self, name: str, threshold: float | None = None, baseline: bool = False,
                    raw: bool = False) -> list[str]:
        scores = (self.baseline if baseline else self.sets)[name]
        if scores.generated is not None:
            return scores.generated
        probs = scores.raw if raw and scores.raw is not None else scores.probs
        return predict_with_threshold(probs, self.labels, self.minority, threshold)

    def report(self, threshold: float | None = ..., max_disagreements: int = 200) -> dict:
        """JSON-ready metrics; ``threshold`` defaults to the one saved with the evaluation."""
        t = self.threshold if threshold is ... else threshold
        out = {"mode": self.mode, "labels": self.labels, "codes": self.codes, "minority_label": self.minority,
               "threshold": t}
        for name, scores in self.sets.items():
            out[name] = set_metrics(list(scores.frame["label"]), self.predictions(name, t), self.labels,
                                    self.minority)
        out["invalid"] = sum(out[name]["invalid"] for name in self.sets)
        if self.priors and self.mode == "score":
            out["prior_correction"] = {"train": dict(zip(self.labels, self.priors["train"])),
                                       "natural": dict(zip(self.labels, self.priors["natural"]))}
            out["without_prior_correction"] = {
                name: set_metrics(list(s.frame["label"]), self.predictions(name, t, raw=True), self.labels,
                                  self.minority) for name, s in self.sets.items()}
        if self.baseline:
            out["baseline"] = {name: set_metrics(list(s.frame["label"]), self.predictions(name, t, baseline=True),
                                                 self.labels, self.minority) for name, s in self.baseline.items()}
        if self.reference:
            out["classic_baseline"] = self.reference["classic"]
            out["majority_baseline"] = {**self.reference["majority"], "label": self.reference["majority_label"]}
        if self.calibration:
            out["calibration"] = {**self.calibration, "temperature": self.temperature}
        if self.mode == "score":
            out["pr_curve"] = {name: pr_curve(list(s.frame["label"]), s.probs, self.labels, self.minority)
                               for name, s in self.sets.items()}
        out["verdicts"] = verdicts(out)
        table = self.disagreements(t)
        out["disagreements_total"] = len(table)
        out["disagreements"] = table.head(max_disagreements).to_dict("records")
        out["conflicts"] = self.conflicts
        return out

    def disagreements(self, threshold: float | None = ...) -> pd.DataFrame:
        """Label-noise candidates, most confident first, judged by the model as trained (before the correction to
        the natural class mix, which would favour the majority label over a minority text's own label)."""
        t = self.threshold if threshold is ... else threshold
        parts = [disagreements(s.frame, s.raw if s.raw is not None else s.probs,
                               self.predictions(name, t, raw=True), self.labels, SET_NAMES[name])
                 for name, s in self.sets.items()]
        merged = pd.concat(parts, ignore_index=True)
        return merged.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)

    def calibrate(self, seed: int = 3407) -> None:
        """Prior correction, then temperature scaling: cross-fitted on Val A for the reported figures, fitted on all of
        Val A for use (the saved temperature)."""
        for scores in self.sets.values():
            scores.raw = scores.probs
            if self.priors:
                scores.probs = prior_correct(scores.probs, np.array(self.priors["train"]),
                                             np.array(self.priors["natural"]))
        val_a = self.sets.get("val_a")
        if val_a is None or len(val_a.frame) < 4:
            return
        y = np.array([self.labels.index(lb) for lb in val_a.frame["label"]])
        corrected = val_a.probs
        calibrated, temps = cross_fitted_temperature(corrected, y, seed)  # the reported ECE: held-out halves
        self.temperature = fit_temperature(corrected, y)  # what is used from now on
        self.calibration = {"fitted_on": f"Val A, 2-fold cross-fitted ({len(y)} rows): each half is calibrated by a "
                                         "temperature fitted on the other half",
                            "cross_fitted_temperatures": [round(t, 4) for t in temps],
                            "before": reliability(corrected, y), "after": reliability(calibrated, y)}
        for scores in self.sets.values():
            scores.probs = with_temperature(scores.probs, self.temperature)
        if len(self.labels) == 2:
            positive = np.array([lb == self.minority for lb in val_a.frame["label"]])
            k = self.labels.index(self.minority)
            decided, chosen = cross_fitted_threshold(calibrated[:, k], positive, seed)
            other = self.labels[1 - k]
            predicted = [self.minority if d else other for d in decided]
            self.calibration["threshold"] = {
                "suggested": best_threshold(calibrated[:, k], positive),
                "cross_fitted": [None if c is None else round(c, 4) for c in chosen],
                "val_a_with_cross_fitted_thresholds": set_metrics(list(val_a.frame["label"]), predicted,
                                                                  self.labels, self.minority)}


def minority_label(prepared: PreparedData) -> str:
    return prepared.table.minority_label


def class_priors(counts: dict, labels: list[str]) -> dict | None:
    """Training mix and natural mix of the classes (shares in label order), from prepare's counts; None when they
    are the same (no oversampling): then there is nothing to correct."""
    train = np.array([counts["train_after"].get(lb, 0) for lb in labels], dtype=float)
    natural = np.array([counts["train_before"].get(lb, 0) for lb in labels], dtype=float)
    if train.sum() == 0 or natural.sum() == 0 or (natural == 0).any():
        return None
    train, natural = train / train.sum(), natural / natural.sum()
    if np.allclose(train, natural, atol=1e-3):
        return None
    return {"train": train.round(6).tolist(), "natural": natural.round(6).tolist()}


def make_scorer(model, tokenizer, prepared: PreparedData, batch_size: int | None = None,
                reuse_prefix: bool | None = None, fast: bool = True):
    """``fast``: bfloat16 compute on a CPU that has it (evaluation of many rows); False for exact comparisons.
    ``batch_size`` None: 16 rows on a CPU, 256 on a GPU (at the 1.5B shape on an H100: 1,426 rows/s against 965 at
    128 on one machine; 2,622 against 2,687 at 512 on another)."""
    from studio.models.loading import inference_autocast

    device = model.device.type
    return LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format,
                       batch_size=batch_size or (256 if device == "cuda" else 16), reuse_prefix=reuse_prefix,
                       autocast=inference_autocast(device) if fast else None)


def _score_sets(scorer: LabelScorer, frames: dict[str, pd.DataFrame], mode: str,
                cache_key: str | None = None, progress=None, what: str = "") -> dict[str, SetScores]:
    """``progress(message, fraction)`` while scoring (the UI's bar, the CLI's lines)."""
    out = {}
    for name, frame in frames.items():
        def step(done, total, name=name):
            if progress:
                progress(f"Scoring {SET_NAMES[name]}{what}: {done} of {total} rows", done / max(1, total))

        texts = list(frame["text"])
        if mode == "generate":
            labels, _ = scorer.generate(texts)
            probs = np.array([[1.0 if lb == c else 0.0 for c in scorer.labels] for lb in labels]).reshape(
                len(labels), len(scorer.labels))
            out[name] = SetScores(frame, probs, generated=labels)
        elif not texts:
            out[name] = SetScores(frame, np.zeros((0, len(scorer.labels))))
        else:
            out[name] = SetScores(frame, cached_scores(scorer, texts, cache_key, step) if cache_key else
                                  scorer.score(texts, step).probs)
    return out


def cached_scores(scorer: LabelScorer, texts: list[str], model_key: str, progress=None) -> np.ndarray:
    """The untrained model's probabilities do not change between runs of the same model, rubric and codes: kept on
    disk (``STUDIO_CACHE``/scores) and read back instead of scoring the same rows again."""
    import hashlib

    from studio.models.embedded import cache_dir

    digest = hashlib.sha256(json.dumps([model_key, scorer.rubric, scorer.fmt, scorer.codes, str(scorer.autocast),
                                        texts], ensure_ascii=False).encode()).hexdigest()[:32]
    path = cache_dir() / "scores" / f"{digest}.npy"
    if path.exists():
        try:
            probs = np.load(path)
            if probs.shape == (len(texts), len(scorer.labels)):
                return probs
        except (OSError, ValueError):
            pass
    probs = scorer.score(texts, progress).probs
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, probs)
        os.replace(tmp, path)
    except OSError:  # a cache that cannot be written only costs time
        pass
    return probs


def evaluate_model(model, tokenizer, prepared: PreparedData, *, mode: str = "score", baseline: bool = True,
                   include_train: bool = False, batch_size: int | None = None, threshold: float | None = None,
                   priors: dict | None = ..., base_key: str | None = None, reference: bool = True,
                   progress=None) -> Evaluation:
    """Score Val A and Val B (and optionally the un-oversampled training rows) with the model as it is; correct the
    probabilities to the natural class mix (``priors``, default: from the prepared counts) and calibrate them; the
    zero-shot baseline (cached under ``base_key``, the base model's identity) and the classic and majority
    baselines beside it."""
    if mode not in MODES:
        raise StudioError(f"mode must be one of {', '.join(MODES)} (got '{mode}').")
    frames = {"val_a": prepared.split.val_a, "val_b": prepared.split.val_b}
    if include_train:
        frames["train"] = prepared.split.train
    if all(len(f) == 0 for f in frames.values()):
        raise StudioError("There are no validation rows to evaluate on; lower val_fraction's minimum or add rows.")
    sets = _score_sets(make_scorer(model, tokenizer, prepared, batch_size), frames, mode, progress=progress)
    base = None
    if baseline and hasattr(model, "disable_adapter"):
        with model.disable_adapter():  # the same weights without LoRA: what training bought
            base = _score_sets(make_scorer(model, tokenizer, prepared, batch_size), frames, mode,
                               cache_key=base_key if mode == "score" else None, progress=progress,
                               what=" with the untrained model")
    if progress:
        progress("Classic baseline, calibration and metrics", 1.0)
    evaluation = Evaluation(labels=prepared.labels, codes=prepared.codes, minority=minority_label(prepared),
                            mode=mode, sets=sets, baseline=base, conflicts=prepared.table.conflicts,
                            threshold=threshold,
                            priors=class_priors(prepared.counts(), prepared.labels) if priors is ... else priors)
    if mode == "score":
        evaluation.calibrate()
    if reference and len(prepared.split.train):
        evaluation.reference = classic.baselines(prepared.split.train, frames, prepared.labels,
                                                 minority_label(prepared))
    return evaluation


# ---- saved runs -------------------------------------------------------------------------------------------------
def adapter_meta(run: RunDir) -> dict:
    path = run.adapter / ADAPTER_META
    if not path.exists():
        state = run.status().get("state", "unknown")
        raise StudioError(f"Run '{run.name}' has no saved adapter (state: {state}). Train it to the end, stop it "
                          "(stopping saves the adapter), or resume it.")
    return json.loads(path.read_text(encoding="utf-8"))


def load_run_model(run: RunDir, log=print):
    """Base model + the run's adapter, on the GPU when there is one; returns (model, tokenizer, meta)."""
    from studio.models.loading import load_with_adapter

    meta = adapter_meta(run)
    # A hub id loads by name; the embedded default is converted into this machine's cache if needed.
    model, tokenizer = load_with_adapter(require_safetensors(run.adapter),
                                         meta.get("base_model") or run.config().model.name,
                                         base_source=meta.get("base_source"), log=log)
    return model, tokenizer, meta


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
    from studio.data.split import Split

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
    prepared.rubric = run.read_run_json().get("rubric") or prepared.rubric
    prepared.split = Split(train=frame.iloc[0:0], val_a=frame.reset_index(drop=True),
                           val_b=balanced.sort_values("row").reset_index(drop=True))
    return prepared, notes


def evaluate_run(run_dir: str | Path, runs_dir: str | Path = "runs", *, data: str | None = None,
                 mode: str = "score", baseline: bool = True, include_train: bool = False,
                 threshold: float | None = ..., loaded=None, log=print, progress=None) -> tuple[Evaluation, dict]:
    """Evaluate a saved run; writes eval.json and disagreements.csv into the run folder."""
    run = RunDir.open(run_dir, runs_dir)
    refuse_while_training(run, "evaluate it")
    model, tokenizer, meta = loaded or load_run_model(run, log=log)
    prepared, notes = prepare_for_run(run, tokenizer, data)
    saved_threshold = run.read_run_json().get("threshold")
    t = saved_threshold if threshold is ... else threshold
    config = run.config()
    priors = meta["class_prior"] if "class_prior" in meta else class_priors(config.data.counts, prepared.labels)
    log(f"Scoring {sum(len(f) for f in (prepared.split.val_a, prepared.split.val_b))} validation rows...")
    evaluation = evaluate_model(model, tokenizer, prepared, mode=mode, baseline=baseline,
                                include_train=include_train, threshold=t, priors=priors, base_key=base_identity(meta),
                                reference=data is None, progress=progress)
    if data is not None:  # the classic model learns from the run's own training rows, as the LLM did
        own = prepare_for_run(run, tokenizer)[0]
        evaluation.reference = classic.baselines(own.split.train, {"val_a": prepared.split.val_a,
                                                                   "val_b": prepared.split.val_b},
                                                 prepared.labels, evaluation.minority)
    report = evaluation.report()
    report["notes"] = notes
    report["data"] = str(data) if data else config.data.path
    if data is None:
        write_json_atomic(run.path / "eval.json", report)
        evaluation.disagreements().to_csv(run.path / "disagreements.csv", index=False)
        facts = run.read_run_json()
        facts["eval_summary"] = {name: {k: report[name][k] for k in ("accuracy", "macro_f1", "minority_recall")}
                                 for name in ("val_a", "val_b")}
        if "classic_baseline" in report:
            facts["eval_summary"]["classic_val_a"] = {k: report["classic_baseline"]["val_a"][k]
                                                      for k in ("accuracy", "macro_f1", "minority_recall")}
        write_json_atomic(run.run_json, facts)
        if mode == "score":
            save_calibration(run, evaluation.temperature, evaluation.priors)
    return evaluation, report


def base_identity(meta: dict) -> str:
    """What the untrained model's scores depend on: its name and, for a folder, when its weights last changed."""
    source = meta.get("base_source") or ""
    stamp = ""
    if source and Path(source).exists():
        stamp = ",".join(f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(Path(source).glob("*.safetensors")))
    return f"{meta.get('base_model')}|{source}|{stamp}"


def save_calibration(run: RunDir, temperature: float, priors: dict | None) -> None:
    """The temperature and class priors that predict, the playground and the exports apply."""
    meta_path = run.adapter / ADAPTER_META
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta.update(temperature=round(float(temperature), 6), class_prior=priors)
        write_json_atomic(meta_path, meta)


def save_threshold(run: RunDir, threshold: float | None) -> None:
    """The decision threshold for the minority class (binary tasks), used by predict and export."""
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise StudioError(f"The threshold must be between 0 and 1 (got {threshold}).")
    facts = run.read_run_json()
    labels = list(run.config().data.label_codes)
    if threshold is not None and len(labels) != 2:
        raise StudioError("A decision threshold applies to two-class tasks only; this run has "
                          f"{len(labels)} classes.")
    facts["threshold"] = threshold
    write_json_atomic(run.run_json, facts)
    meta_path = run.adapter / ADAPTER_META
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["threshold"] = threshold
        write_json_atomic(meta_path, meta)


# ---- batch predictions ----------------------------------------------------------------------------------------
def calibrated(probs: np.ndarray, meta: dict, raw: bool = False) -> np.ndarray:
    """The scorer's probabilities as the run uses them: prior-corrected (``class_prior``) and temperature-scaled."""
    if raw:
        return probs
    prior = meta.get("class_prior")
    if prior:
        probs = prior_correct(probs, np.array(prior["train"]), np.array(prior["natural"]))
    return with_temperature(probs, float(meta.get("temperature") or 1.0))


def predict_frame(model, tokenizer, meta: dict, texts: list[str | None], threshold: float | None = None,
                  minority: str | None = None, batch_size: int = 16, raw: bool = False) -> pd.DataFrame:
    """One output row per input text: predicted label and code, confidence and one probability per class. The
    probabilities are corrected to the natural class mix and calibrated as the run's evaluation saved them
    (``raw=True``: the scorer's own)."""
    codes = meta["label_codes"]
    labels = list(codes)
    scorer = LabelScorer(model, tokenizer, codes, meta["rubric"], meta["prompt_format"], batch_size=batch_size)
    present = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
    probs = np.full((len(texts), len(labels)), np.nan)
    if present:
        probs[present] = calibrated(scorer.score([str(texts[i]).strip() for i in present]).probs, meta, raw)
    predicted = [None] * len(texts)
    if present:
        chosen = predict_with_threshold(probs[present], labels, minority, threshold)
        for i, lb in zip(present, chosen):
            predicted[i] = lb
    out = pd.DataFrame({
        "predicted_label": predicted,
        "predicted_code": [codes[p] if p else None for p in predicted],
        "confidence": [None if p is None else round(float(probs[i, labels.index(p)]), 4)
                       for i, p in enumerate(predicted)],
    })
    for k, lb in enumerate(labels):
        out[f"p_{lb}"] = np.round(probs[:, k], 4)
    out["note"] = [None if p else "empty text: not classified" for p in predicted]
    return out


def predict_file(run_dir: str | Path, file: str | Path, out: str | Path, runs_dir: str | Path = "runs", *,
                 text_column: str | None = None, loaded=None, log=print) -> pd.DataFrame:
    """Classify every row of a file (labels not needed) and write the input columns + predictions as CSV."""
    from studio.data.readers import read_table
    from studio.data.table import detect_text_column, resolve_column

    run = RunDir.open(run_dir, runs_dir)
    refuse_while_training(run, "use it to predict")
    config = run.config()
    source = read_table(file, max_mb=config.data.max_file_mb)
    frame = source.frame
    name = os.path.basename(str(file))
    column = resolve_column(text_column, list(frame.columns), name, "text", "--text-col") or (
        config.data.text_column if config.data.text_column in frame.columns else detect_text_column(frame))
    model, tokenizer, meta = loaded or load_run_model(run, log=log)
    facts = run.read_run_json()
    predictions = predict_frame(model, tokenizer, meta, list(frame[column]), threshold=facts.get("threshold"),
                                minority=run_minority_label(facts))
    result = pd.concat([frame.reset_index(drop=True), predictions], axis=1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    result.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return result


# ---- periodic evaluation during training ---------------------------------------------------------------------
def periodic_evaluator(prepared: PreparedData, tokenizer, config: RunConfig):
    """The worker's hook: every eval_steps, macro-F1 / minority recall on a capped, stratified Val A sample, with
    the probabilities corrected to the natural class mix as the final evaluation does."""
    val_a = prepared.split.val_a
    cap = config.train.eval_max_rows
    if len(val_a) > cap:
        val_a = val_a.groupby("label", group_keys=False).sample(frac=cap / len(val_a),
                                                                 random_state=config.data.split_seed)
    minority = minority_label(prepared)
    priors = class_priors(prepared.counts(), prepared.labels)
    meta = {"class_prior": priors, "temperature": 1.0}

    def evaluate(model, step: int) -> dict:
        if val_a.empty:
            return {}
        probs = calibrated(make_scorer(model, tokenizer, prepared).score(list(val_a["text"])).probs, meta)
        predicted = [prepared.labels[i] for i in probs.argmax(axis=1)]
        metrics = set_metrics(list(val_a["label"]), predicted, prepared.labels, minority)
        return {"eval_rows": len(val_a), "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                "minority_recall": metrics["minority_recall"]}

    return evaluate



# ---- the guide's "sanity-check inference" before training ------------------------------------------------------
def sanity_check(config: RunConfig, rows: int = 6, log=print) -> pd.DataFrame:
    """The untrained base model on a few Val A rows: its constrained choice and what it generates."""
    from studio.models.loading import load_base

    model, tokenizer = load_base(config.model.name, log=log)
    prepared = prepare_data(dataclasses.replace(config.data), tokenizer, config.model.max_seq_length)
    sample = prepared.split.val_a.groupby("label", group_keys=False).head(max(1, rows // len(prepared.labels)))
    scorer = make_scorer(model, tokenizer, prepared)
    texts = list(sample["text"])
    scores = scorer.score(texts)
    generated, raw = scorer.generate(texts)
    return pd.DataFrame({"label": list(sample["label"]), "scored": scores.predicted,
                         "confidence": scores.probs.max(axis=1).round(3), "generated_label": generated,
                         "generated": raw, "text": texts})
