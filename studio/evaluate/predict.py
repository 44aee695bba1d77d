"""Batch predictions with a saved run: one output row per input text by the run's classifier in use (the candidate
its evaluation chose, or the one picked), the run's threshold applied; and the fine-tuned LLM's own view of a few
texts (``predict_frame``: the Playground's after and before training)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from studio.data.readers import read_table
from studio.data.table import detect_text_column, resolve_column
from studio.evaluate.calibration import apply_calibration
from studio.evaluate.metrics import predict_with_threshold
from studio.evaluate.scoring import LabelScorer
from studio.evaluate.classifier import RunClassifier
from studio.runs.folder import RunDir
from studio.runs.jobs import refuse_while_training
from studio.runs.sheets import write_csv


def predict_frame(model, tokenizer, card: dict, texts: list[str | None], threshold: float | None = None,
                  minority: str | None = None, batch_size: int = 16, raw: bool = False) -> pd.DataFrame:
    """Predicted label and code, confidence and one probability per class for each text (``raw=True``: the scorer's
    own probabilities); an empty text gets no label and a note."""
    codes = card["label_codes"]
    labels = list(codes)
    scorer = LabelScorer(model, tokenizer, codes, card["rubric"], card["prompt_format"], batch_size=batch_size)
    present = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
    probs = np.full((len(texts), len(labels)), np.nan)
    if present:
        probs[present] = apply_calibration(scorer.score([str(texts[i]).strip() for i in present]).probs, card, raw)
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
                 text_column: str | None = None, use: str | None = None, loaded=None, log=print) -> pd.DataFrame:
    """Classify every row of a file (labels not needed) with the run's classifier in use (``use``: another candidate)
    and write the input columns + predictions as CSV."""
    run = RunDir.open(run_dir, runs_dir)
    refuse_while_training(run, "use it to predict")
    config = run.config()
    source = read_table(file, max_mb=config.data.max_file_mb)
    frame = source.frame
    name = os.path.basename(str(file))
    column = resolve_column(text_column, list(frame.columns), name, "text", "--text-col") or (
        config.data.text_column if config.data.text_column in frame.columns else detect_text_column(frame))
    classifier = RunClassifier.of_run(run, use, loaded=loaded, log=log)
    predictions = classifier.predict_frame(list(frame[column]))
    result = pd.concat([frame.reset_index(drop=True), predictions], axis=1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(result, out)
    return result
