"""The guide's "sanity-check inference" before training: the untrained base model on a few Val A rows, its
constrained choice beside what it generates."""

from __future__ import annotations

import dataclasses

import pandas as pd

from studio.config import RunConfig
from studio.data.prepare import prepare_data
from studio.evaluate.evaluation import make_scorer
from studio.models.loading import load_base


def sanity_check(config: RunConfig, rows: int = 6, log=print) -> pd.DataFrame:
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
