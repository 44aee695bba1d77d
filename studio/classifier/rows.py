"""Decisions into output rows, one function for every face (predict, serve, the Python API, the Playground, the
bundle's check): the predicted label and code, the confidence, one probability per class, and a note where a text
was not classified (an empty one) or was answered "unsure"."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from studio.classifier.candidates import EMPTY_NOTE, UNSURE, label_of

UNSURE_NOTE = "unsure: no class was likely enough (the rule's cut)"


def present(texts: list) -> list[int]:
    """The positions of the texts there is something to classify in."""
    return [i for i, t in enumerate(texts) if t is not None and str(t).strip()]


def predict_frame(texts: list, labels: list[str], codes: dict[str, str],
                  classify: Callable[[list[str]], tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """One row per text, in order; ``classify(texts) -> (probabilities, decided class indices)`` is called once, on
    the non-empty texts (stripped)."""
    where = present(texts)
    probs = np.full((len(texts), len(labels)), np.nan)
    predicted: list[str | None] = [None] * len(texts)
    if where:
        chosen, decided = classify([str(texts[i]).strip() for i in where])
        probs[where] = chosen
        for i, k in zip(where, decided):
            predicted[i] = label_of(labels, int(k))
    out = pd.DataFrame({
        "predicted_label": predicted,
        "predicted_code": [codes.get(p) if p else None for p in predicted],
        # "unsure": the most likely class's probability, the one that fell short of the rule's cut
        "confidence": [None if p is None else round(float(probs[i, labels.index(p)] if p in labels
                                                         else np.max(probs[i])), 4) for i, p in enumerate(predicted)],
    })
    for k, lb in enumerate(labels):
        out[f"p_{lb}"] = np.round(probs[:, k], 4)
    out["note"] = [EMPTY_NOTE if p is None else UNSURE_NOTE if p == UNSURE and UNSURE not in labels else None
                   for p in predicted]
    return out
