"""Stratified split into train / Val A (natural class ratio) / Val B (balanced), and training-set balancing.

The guide's recipe for imbalanced data: evaluate on the production-like ratio (Val A) and on a balanced set
(Val B) that measures the minority boundary; train on an oversampled 70/30 or 50/50 mix.
Identical texts (conflicting duplicates) always land in one set, so nothing leaks between sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from studio.errors import StudioError

BALANCE_CHOICES = ["natural", "70/30", "50/50", "custom"]
BALANCE_SHARES = {"70/30": 0.3, "50/50": 0.5}


@dataclass
class Split:
    train: pd.DataFrame
    val_a: pd.DataFrame
    val_b: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def class_counts(frame: pd.DataFrame, labels: list[str] | None = None) -> dict[str, int]:
    counts = frame["label"].value_counts()
    order = labels or sorted(counts.index)
    return {lb: int(counts.get(lb, 0)) for lb in order}


def split_table(frame: pd.DataFrame, *, val_fraction: float = 0.15, val_b_per_class: int = 0,
                seed: int = 3407) -> Split:
    """Per-class seeded split. ``val_b_per_class`` 0 means auto (the minority's Val A size)."""
    if not 0 < val_fraction < 0.9:
        raise StudioError(f"val_fraction must be between 0 and 0.9 (got {val_fraction}); 0.1–0.2 is typical.")
    if val_b_per_class < 0:
        raise StudioError("val_b_per_class must be 0 (automatic) or a positive number of rows per class.")
    rng = np.random.default_rng(seed)
    # One group per distinct text, labelled by its first row's label, so duplicates never straddle sets.
    groups = frame.groupby("text", sort=False).agg(label=("label", "first"), first_row=("row", "min"))
    groups = groups.sort_values("first_row")
    per_class = {lb: rng.permutation(g.index.to_numpy()) for lb, g in groups.groupby("label", sort=True)}

    val_a_texts, pool = [], {}
    for lb, texts in per_class.items():
        n_a = max(1, round(len(texts) * val_fraction)) if len(texts) >= 2 else 0
        val_a_texts.extend(texts[:n_a])
        pool[lb] = texts[n_a:]

    warnings = []
    smallest_pool = min(len(t) for t in pool.values())
    minority_val = min(max(1, round(len(t) * val_fraction)) for t in per_class.values())
    wanted = val_b_per_class or minority_val
    n_b = min(wanted, smallest_pool - 1)  # leave every class at least one training row
    if 1 <= n_b < wanted:
        warnings.append(f"Val B has {max(n_b, 0)} rows per class instead of {wanted}: the smallest class has too "
                        "few rows left after Val A. Add minority examples for a steadier balanced score.")
    val_b_texts = []
    if n_b >= 1:
        for lb in pool:
            val_b_texts.extend(pool[lb][:n_b])
            pool[lb] = pool[lb][n_b:]
    else:
        warnings.append("Val B is empty: too few rows in the smallest class to hold out a balanced set.")
    train_texts = [t for texts in pool.values() for t in texts]

    # One dictionary pass assigns every row (a text, and so all its duplicates, lands in one set); three isin()
    # calls on Arrow strings took 2 s of a 200k-row check.
    assigned = {**{t: "train" for t in train_texts}, **{t: "val_a" for t in val_a_texts},
                **{t: "val_b" for t in val_b_texts}}
    which = [assigned.get(t) for t in frame["text"].tolist()]

    def rows(name):
        chosen = frame[[w == name for w in which]]
        return chosen.sort_values("row").reset_index(drop=True)

    return Split(train=rows("train"), val_a=rows("val_a"), val_b=rows("val_b"), warnings=warnings)


def minority_share_for(balance: str, custom_share: float) -> float | None:
    """The target share of each minority class (vs the majority) for a balance choice; None = natural."""
    if balance not in BALANCE_CHOICES:
        raise StudioError(f"balance must be one of {', '.join(BALANCE_CHOICES)} (got '{balance}').")
    if balance == "natural":
        return None
    share = BALANCE_SHARES.get(balance, custom_share)
    if not 0 < share <= 0.5:
        raise StudioError(f"The custom minority share must be above 0 and at most 0.5 (got {share}); "
                          "0.3 means 70/30, 0.5 means 50/50.")
    return share


def balance_train(train: pd.DataFrame, *, balance: str = "70/30", minority_share: float = 0.3,
                  undersample_majority: bool = False, seed: int = 3407) -> pd.DataFrame:
    """Oversample minorities (or undersample larger classes) so each class is at least ``share`` of a
    two-class mix with the largest class; shuffled with the seed. Natural returns the rows shuffled."""
    share = minority_share_for(balance, minority_share)
    rng = np.random.default_rng(seed)
    if share is None:
        return train.sample(frac=1, random_state=seed).reset_index(drop=True)
    counts = train["label"].value_counts()
    ratio = share / (1 - share)  # minority : majority
    parts = []
    if undersample_majority:
        cap = max(1, math.ceil(counts.min() / ratio - 1e-9))  # the largest size any class may keep
        for lb, g in train.groupby("label", sort=True):
            keep = g if len(g) <= cap else g.iloc[rng.choice(len(g), size=cap, replace=False)]
            parts.append(keep)
    else:
        target = math.ceil(counts.max() * ratio - 1e-9)  # 900 * 0.4/0.6 is 600.0000000001 in floats
        for lb, g in train.groupby("label", sort=True):
            parts.append(g)
            missing = target - len(g)
            if missing > 0:
                # Whole copies first, then a random remainder: every row is repeated almost equally often.
                copies, rest = divmod(missing, len(g))
                parts.extend([g] * copies)
                parts.append(g.iloc[rng.choice(len(g), size=rest, replace=False)])
    out = pd.concat(parts, ignore_index=True)
    return out.sample(frac=1, random_state=seed).reset_index(drop=True)
