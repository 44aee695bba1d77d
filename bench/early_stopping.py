"""Which adapter should a run keep? Early-stopping rules measured across seeds, on real data.

Each run trains with the defaults (in this process, one after another, so the stack and the model are imported
once), never stops early (patience 0) and, with ``--dense 3``, evaluates three times as often as the defaults would
(training is unchanged: scoring does not touch the trainer's random numbers). At every check the whole of Val A is
scored as the periodic evaluation scores its sample (probabilities corrected to the natural class mix, then argmax)
and every row's prediction is kept.

Offline, Val A is split into two stratified halves per run: a rule sees only the first ("pick") half, through a
sample of ``--sample`` rows or the whole half, and the adapter it keeps is judged on the second ("judge") half,
which no rule has seen. The rules:

  best          the best sample macro-F1 so far (today's rule), stopping after ``patience`` checks without a better
  last          the last adapter
  margin d      the last adapter, unless an earlier one is better on the sample by more than d
  smoothed      the best of the sample macro-F1 averaged with its neighbours (one check either side)
  clearly       the last adapter, unless the best earlier one beats it in at least 80 / 90 / 95% of paired bootstrap
                resamples of the rows the rule sees

each at the defaults' frequency (every ``dense``-th check and the last) and at the dense one. Reported per rule:
the judged macro-F1 of the kept adapter, its shortfall from the best adapter of the run (judged), how often it is
within 0.01 of it, and the share of the run's steps trained.

    python bench/early_stopping.py --datasets fpb sample rt --seeds 1 2 3 4 --dense 3 --json out.json
    python bench/early_stopping.py --analyse out.json [out2.json ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DATASETS, REPO  # noqa: E402  (bench/quality.py: the same datasets; puts the repo on the path)

PATIENCE = (0, 3, 5)
MARGINS = (0.01, 0.02, 0.03, 0.05)
CONFIDENCES = (0.8, 0.9, 0.95)


# ---- recording ------------------------------------------------------------------------------------------------
def recording_factory(store: dict):
    from studio.classifier.choice import applied
    from studio.classifier.rules import Sources
    from studio.evaluate.evaluation import make_scorer
    from studio.evaluate.periodic import PeriodicEvaluator

    class RecordingEvaluator(PeriodicEvaluator):
        """The periodic evaluation (its sample's figures drive the run as usual), with every Val A row's prediction
        kept at every check."""

        def __init__(self, prepared, tokenizer, config):
            super().__init__(prepared, tokenizer, config)
            full = prepared.split.val_a
            labels = prepared.labels
            store.update(labels=labels, y=[labels.index(v) for v in full["label"]],
                         product_sample=[int(i) for i in full.index.get_indexer(self.val_a.index)],
                         minority=labels.index(prepared.table.minority_label), checks=[])

        def __call__(self, model, step: int) -> dict:
            started = time.perf_counter()
            full = self.prepared.split.val_a
            scorer = make_scorer(model, self.tokenizer, self.prepared)
            predicted = applied(self.rule, Sources(scorer.score(list(full["text"])).probs, None), self.task).decided
            store["checks"].append({"step": step, "pred": predicted.tolist(),
                                    "seconds": round(time.perf_counter() - started, 2)})
            sample = np.asarray(store["product_sample"])
            y = np.asarray(store["y"])
            classes = len(self.prepared.labels)
            return {"eval_rows": len(sample), "macro_f1": macro_f1(y[sample], predicted[sample], classes),
                    "accuracy": float((y[sample] == predicted[sample]).mean()),
                    "minority_recall": recall(y[sample], predicted[sample], store["minority"])}

    return RecordingEvaluator


def denser(holder: dict, factor: int):
    """A trainer callback that makes the periodic evaluation ``factor`` times as frequent once the plan is made."""
    from transformers import TrainerCallback

    class Denser(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            holder["ready"].wait(60)
            callback = holder["job"].callback
            holder["default_eval_steps"] = callback.eval_steps
            if factor > 1 and callback.eval_steps:
                callback.eval_steps = max(1, callback.eval_steps // factor)
            holder["eval_steps"] = callback.eval_steps

    return Denser()


def one(name: str, path: Path, seed: int, args) -> dict:
    from studio.door.labels import config_for_file
    from studio.train.worker import start_training

    config = config_for_file(path).replace({"data": {"split_seed": seed},
                                            "train": {"seed": seed, "early_stopping_patience": 0}})
    if args.model:
        config = config.replace({"model": {"name": args.model}})
    if args.max_steps:
        config = config.replace({"train": {"max_steps": args.max_steps, "time_budget_minutes": 0}})
    store: dict = {}
    holder = {"ready": threading.Event()}
    started = time.time()
    job = start_training(config, runs_dir=args.runs, evaluator_factory=recording_factory(store),
                         callbacks=[denser(holder, args.dense)])
    holder["job"] = job
    holder["ready"].set()
    job.wait()
    status = job.run.status()
    return {"dataset": name, "seed": seed, "run": job.run.name, "state": job.state, "steps": status.get("step"),
            "default_eval_steps": holder.get("default_eval_steps"), "eval_steps": holder.get("eval_steps"),
            "dense": args.dense, "minutes": round((time.time() - started) / 60, 2), **store}


# ---- the rules ------------------------------------------------------------------------------------------------
def macro_f1(y, pred, classes: int) -> float:
    from studio.classifier.candidates import macro_f1 as studio_macro_f1  # (the studio's own: the choice and bootstrap)

    return studio_macro_f1(np.asarray(y), np.asarray(pred), classes)


def recall(y, pred, label: int) -> float:
    mask = y == label
    return float((pred[mask] == label).mean()) if mask.any() else 0.0


def pick_best(scores: list[float], patience: int) -> tuple[int, int]:
    """(kept, stopped): the best so far (a strictly better score only), stopping after ``patience`` checks without
    a better one (0: never)."""
    best, since = 0, 0
    for i in range(1, len(scores)):
        if scores[i] > scores[best]:
            best, since = i, 0
        else:
            since += 1
            if patience and since >= patience:
                return best, i
    return best, len(scores) - 1


def pick_margin(scores: list[float], margin: float) -> int:
    last = len(scores) - 1
    best = int(np.argmax(scores[:last])) if last else last
    return best if last and scores[best] > scores[last] + margin else last


def pick_clearly_better(preds: list[np.ndarray], y: np.ndarray, classes: int, seed: int,
                        confidence: float = 0.95) -> int:
    """The last adapter, unless the best earlier one is better on the rows seen in at least ``confidence`` of
    paired bootstrap resamples of those rows (the studio's rule, at 95%: ``studio.evaluate.periodic``)."""
    from studio.evaluate.metrics import share_better

    scores = [macro_f1(y, p, classes) for p in preds]
    last = len(preds) - 1
    if not last:
        return last
    best = int(np.argmax(scores[:last]))
    if scores[best] <= scores[last]:
        return last
    return best if share_better(y, preds[best], preds[last], classes, seed=seed) >= confidence else last


def pick_smoothed(scores: list[float]) -> int:
    smooth = [float(np.mean(scores[max(0, i - 1):i + 2])) for i in range(len(scores))]
    return int(np.argmax(smooth))


def halves(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    pick, judge = train_test_split(positions, test_size=0.5, random_state=seed, stratify=stratify)
    return np.sort(pick), np.sort(judge)


def stratified_sample(positions: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n >= len(positions):
        return positions
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y[positions])
    stratify = y[positions] if counts[counts > 0].min() >= 2 else None
    chosen, _ = train_test_split(positions, train_size=n, random_state=seed, stratify=stratify)
    return np.sort(chosen)


def rule_picks(scores: list[float]) -> dict[str, tuple[int, int]]:
    """Rule → (kept check, last check trained)."""
    last = len(scores) - 1
    picks = {f"best, patience {p}" if p else "best, no early stop": pick_best(scores, p) for p in PATIENCE}
    picks["last"] = (last, last)
    picks.update({f"margin {m:.2f}": (pick_margin(scores, m), last) for m in MARGINS})
    picks["smoothed"] = (pick_smoothed(scores), last)
    return picks


def judge_run(run: dict, sample: int) -> list[dict]:
    y = np.asarray(run["y"])
    classes = len(run["labels"])
    preds = [np.asarray(c["pred"]) for c in run["checks"]]
    steps = [c["step"] for c in run["checks"]]
    pick, judge = halves(y, run["seed"])
    judged = [macro_f1(y[judge], p[judge], classes) for p in preds]
    best_judged = max(judged)
    every = max(1, run.get("dense") or 1)
    frequencies = {"dense": list(range(len(preds))),
                   "default": sorted({*range(every - 1, len(preds), every), len(preds) - 1})}
    views = {f"sample {sample}": stratified_sample(pick, y, sample, run["seed"]), "whole pick half": pick}
    rows = []
    for view, rows_seen in views.items():
        seen = [macro_f1(y[rows_seen], p[rows_seen], classes) for p in preds]
        for frequency, checks in frequencies.items():
            picks = rule_picks([seen[i] for i in checks])
            for confidence in CONFIDENCES:
                picks[f"last unless clearly better ({confidence:.0%})"] = (pick_clearly_better(
                    [preds[i][rows_seen] for i in checks], y[rows_seen], classes, run["seed"], confidence),
                    len(checks) - 1)
            for rule, (kept, stopped) in picks.items():
                kept_check = checks[kept]
                rows.append({"dataset": run["dataset"], "seed": run["seed"], "view": view,
                             "frequency": frequency, "rule": rule, "kept_step": steps[kept_check],
                             "judged": judged[kept_check], "shortfall": best_judged - judged[kept_check],
                             "steps_share": steps[checks[stopped]] / steps[-1]})
    return rows


def summarise(runs: list[dict], sample: int) -> list[dict]:
    import pandas as pd

    frame = pd.DataFrame([row for run in runs for row in judge_run(run, sample)])
    frame["good"] = frame["shortfall"] <= 0.01
    table = (frame.groupby(["view", "frequency", "rule"])
             .agg(judged=("judged", "mean"), shortfall=("shortfall", "mean"), worst=("shortfall", "max"),
                  good=("good", "mean"), steps_share=("steps_share", "mean"), runs=("judged", "size"))
             .reset_index().sort_values(["view", "frequency", "shortfall"]))
    return table.round(4).to_dict("records")


def print_table(table: list[dict]) -> None:
    print("| rule sees | checks | rule | judged macro-F1 (mean) | shortfall from the run's best (mean / worst) | "
          "within 0.01 of the best | steps trained | runs |")
    print("|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['view']} | {r['frequency']} | {r['rule']} | {r['judged']:.3f} | {r['shortfall']:.3f} / "
              f"{r['worst']:.3f} | {r['good']:.0%} | {r['steps_share']:.0%} | {r['runs']} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["fpb"], choices=sorted(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--dense", type=int, default=3, help="evaluate this many times as often as the defaults")
    parser.add_argument("--sample", type=int, default=150, help="rows a rule sees (the defaults' eval_max_rows)")
    parser.add_argument("--runs", default=str(REPO / "runs-bench"))
    parser.add_argument("--json", help="raw runs, written after each run")
    parser.add_argument("--analyse", nargs="+", help="summarise these raw files instead of training")
    parser.add_argument("--model", default=None, help="another model (a smoke test: a tiny model folder)")
    parser.add_argument("--max-steps", type=int, default=None, help="a smoke test's few steps")
    args = parser.parse_args(argv)
    if args.analyse:
        runs = [run for f in args.analyse for run in json.loads(Path(f).read_text())["runs"]]
    else:
        from studio.machine import import_stack

        import_stack(for_training=True)  # unsloth first on a GPU, as a run has it (the recording evaluator
        # imports transformers)
        runs = []
        for name in args.datasets:
            for seed in args.seeds:
                runs.append(one(name, DATASETS[name](), seed, args))
                print(json.dumps({k: runs[-1][k] for k in ("dataset", "seed", "steps", "eval_steps", "minutes")}),
                      flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps({"runs": runs}))
    table = summarise(runs, args.sample)
    print_table(table)
    if args.json and not args.analyse:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": table}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
