"""Label-issue finding against planted noise: 5% of the labels flipped at random (seeded) in a real file; how many of
the flips come out within the top k (k = the number of flips) and the top 2k of the ranking, with the classic model
alone and with LLM folds added, and the minutes each took on this machine; with LLM folds, the ways of combining the
two sources' out-of-fold probabilities side by side (the average the studio uses, a geometric mean, a weighted
average whose weight is fitted to the given labels, logistic stacking), each ranked two ways.

    python bench/label_noise.py --datasets fpb sample --llm-folds 2 --json docs/device-results/label-noise-cpu.json

Runs `python -m studio label-issues` on the noisy copy as a user would (the LLM folds with the studio's defaults),
then reads the full ranking from the same code path to score the top k and 2k.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quality import DATASETS  # noqa: E402  (the same datasets as bench/quality.py)


def noisy_copy(path: Path, share: float, seed: int) -> tuple[Path, set[int]]:
    """The file with ``share`` of its labels flipped to another label; returns (copy, flipped line numbers)."""
    from studio.data.table import load_table

    table = load_table(path)
    frame = pd.read_csv(path) if path.suffix == ".csv" else None
    if frame is None:
        raise SystemExit(f"{path}: a CSV with a header is expected")
    label = table.label_column
    rng = random.Random(seed)
    labels = sorted(frame[label].astype(str).unique())
    flips = rng.sample(range(len(frame)), round(share * len(frame)))
    for i in flips:
        frame.loc[i, label] = rng.choice([lb for lb in labels if lb != str(frame.loc[i, label])])
    out = Path(tempfile.mkdtemp(prefix="noisy-")) / f"noisy-{path.name}"
    frame.to_csv(out, index=False)
    return out, {i + 2 for i in flips}  # header on line 1


def found(ranking_rows: list[int], flipped: set[int], kept: set[int]) -> dict:
    """Recall and precision of the flips within the top k and 2k (k = flips among the rows the reader kept)."""
    planted = flipped & kept
    k = len(planted)
    out = {"flips": k}
    for name, n in (("k", k), ("2k", 2 * k)):
        top = set(ranking_rows[:n])
        hits = len(top & planted)
        out[f"recall@{name}"] = round(hits / k, 3) if k else None
        out[f"precision@{name}"] = round(hits / n, 3) if n else None
    return out


def one(name: str, path: Path, folds: int, seed: int, probs_dir: str | None = None,
        reuse: bool = False) -> list[dict]:
    from studio.config import DataRecipe, RunConfig
    from studio.data.prepare import prepare_data
    from studio.door.labels import llm_out_of_fold
    from studio.evaluate import label_issues
    from studio.models.loading import load_tokenizer

    noisy, flipped = noisy_copy(path, 0.05, seed)
    results = []
    started = time.perf_counter()
    prepared = prepare_data(DataRecipe(path=str(noisy)))
    classic = label_issues.find(prepared)
    kept = set(prepared.table.frame["row"])
    results.append({"dataset": name, "sources": "classic", "score": label_issues.SCORE_METHOD,
                    "minutes": round((time.perf_counter() - started) / 60, 2), "rows": len(kept),
                    **found(list(classic.ranking["row"]), flipped, kept)})
    print(json.dumps(results[-1]), flush=True)
    if folds:
        started = time.perf_counter()
        config = RunConfig()
        config.data.path = str(noisy)
        tokenizer = load_tokenizer(config.model.name)
        prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length)
        workdir = Path(tempfile.mkdtemp(prefix="label-noise-folds-"))
        saved = Path(probs_dir or ".") / f"label-noise-{name}-seed{seed}.npz"
        if reuse and saved.exists():  # the folds' probabilities from an earlier run on the same noisy copy
            llm = np.load(saved)["llm"]
        else:
            llm = llm_out_of_fold(prepared, config, folds, workdir, log=lambda m: print(m, file=sys.stderr))
        llm_minutes = (time.perf_counter() - started) / 60
        both = label_issues.find(prepared, llm_probs=llm)
        results.append({"dataset": name, "sources": f"classic + {folds} LLM folds", "score": label_issues.SCORE_METHOD,
                        "rows": len(kept),
                        "minutes": round((time.perf_counter() - started) / 60, 2), **found(
                            list(both.ranking["row"]), flipped, kept)})
        print(json.dumps(results[-1]), flush=True)
        # The rules, measured: each source alone, two ways of combining them, and cleanlab's two usual scores
        # (the studio's default first).
        classic_probs = label_issues.classic.out_of_fold(prepared.table.frame, prepared.labels)
        given = np.array([prepared.labels.index(lb) for lb in prepared.table.frame["label"]])
        weight = _fitted_weight(classic_probs, llm, given)
        sources = (("classic", classic_probs), ("LLM folds alone", llm),
                   ("average of both (the studio's combination until 2026-12-02)", (classic_probs + llm) / 2),
                   ("geometric mean", _geometric(classic_probs, llm)),
                   (f"weighted average, classic weight {weight:.2f} fitted to the given labels",
                    weight * classic_probs + (1 - weight) * llm),
                   ("logistic stacking, cross-fitted (the studio's combination)",
                    label_issues.combine([classic_probs, llm], given)))
        if probs_dir:
            np.savez_compressed(Path(probs_dir) / f"label-noise-{name}-seed{seed}.npz", classic=classic_probs, llm=llm,
                                given=given, rows=prepared.table.frame["row"].to_numpy(),
                                flipped=np.array(sorted(flipped)))
        for method in (label_issues.SCORE_METHOD, "normalized_margin"):
            for rule, probs in sources:
                _, ranking, _ = label_issues.rank(prepared.table.frame, prepared.labels, probs,
                                                  prepared.table.conflicts, [rule], method=method)
                results.append({"dataset": name, "sources": rule, "score": method, "rows": len(kept),
                                "minutes": round(llm_minutes, 2), **found(list(ranking["row"]), flipped, kept)})
                print(json.dumps(results[-1]), flush=True)
    return results


def _fitted_weight(classic_probs, llm, given) -> float:
    """The classic model's weight in the average whose probabilities give the given labels (5% of them wrong) the
    highest likelihood: learned from the file itself, without knowing which labels are wrong."""
    grid = np.linspace(0, 1, 21)
    rows = np.arange(len(given))
    likelihood = [np.mean(np.log(np.clip(w * classic_probs[rows, given] + (1 - w) * llm[rows, given], 1e-12, 1)))
                  for w in grid]
    return float(grid[int(np.argmax(likelihood))])


def _geometric(a, b):
    out = np.sqrt(np.clip(a, 1e-12, 1) * np.clip(b, 1e-12, 1))
    return out / out.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["fpb", "sample"], choices=list(DATASETS))
    parser.add_argument("--llm-folds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json")
    parser.add_argument("--probs", help="a folder for each dataset's out-of-fold probabilities (.npz)")
    parser.add_argument("--reuse-probs", action="store_true", help="the LLM folds' probabilities from --probs, where "
                                                                   "an earlier run saved them (no training)")
    args = parser.parse_args()
    results = []
    for name in args.datasets:
        results += one(name, DATASETS[name](), args.llm_folds, args.seed, args.probs, args.reuse_probs)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
