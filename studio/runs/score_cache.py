"""The untrained model's probabilities do not change between runs of the same model, rubric, codes and rows: they are
kept on disk (``STUDIO_CACHE``/scores) and read back instead of scoring the same rows again."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from studio.files import written_atomically
from studio.machine import cache_dir


def cached_scores(scorer, texts: list[str], model_key: str, progress=None) -> np.ndarray:
    """``scorer.score(texts).probs``, from the cache when the same model (``model_key``), rubric, codes, compute and
    rows were scored before."""
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
        with written_atomically(path, ".tmp.npy") as tmp:  # (np.save adds .npy to a name without it)
            np.save(tmp, probs)
    except OSError:  # a cache that cannot be written only costs time
        pass
    return probs
