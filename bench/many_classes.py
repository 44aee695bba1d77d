"""Many classes (#41): what a row costs and what the defaults reach at 6, 77 and 151 classes, on CLINC150.

Two measures, each run as a user would (the door's verbs, the defaults, no flag), one JSON line per result:

- ``cost``: for the first K intents of the training file (K = 6, 77, 151): tokens per training row with the default
  rubric and with the listing rubric, training rows/s over a few steps, and scoring rows/s of the untrained model
  on Val A, all on this machine.
- ``quality``: train and evaluate with the defaults, then score the labelled test file with the run's saved rules
  (nothing fitted on it): minutes, in-scope accuracy, out-of-scope recall and precision of the classifier in use and
  of each candidate. ``--codes letters|numbers`` and ``--rubric listing`` swap one default for the comparison.

    python bench/many_classes.py cost --data ../shared/datasets/clinc150_train.csv --out cost.jsonl
    python bench/many_classes.py quality --data ../shared/datasets/clinc150_train.csv \
        --test ../shared/datasets/clinc150_test.csv --out quality.jsonl [--codes letters] [--rubric listing]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = (6, 77, 151)


def first_intents(data: str, k: int, folder: Path) -> Path:
    """The rows of the first ``k`` intents (in file order; ``oos`` kept where it falls among them)."""
    frame = pd.read_csv(data)
    label = "intent" if "intent" in frame else frame.columns[-1]
    keep = list(dict.fromkeys(frame[label]))[:k]
    path = folder / f"first-{k}.csv"
    frame[frame[label].isin(keep)].to_csv(path, index=False)
    return path


def with_model(config, args):
    """A smoke test's model (a tiny model folder) in place of the default."""
    return config.replace({"model": {"name": args.model}}) if args.model else config


def variant(config, codes: str, rubric: str, tokenizer):
    """The config with one default swapped: the codes (letters, numbers) or the rubric (listing every code)."""
    from studio.data.labels import letter_codes, listing_rubric, suggest_codes
    from studio.door.data import check_data

    labels = list(check_data(config).prepared.labels)
    table = {"letters": lambda: letter_codes(labels), "numbers": lambda: {lb: str(i + 1) for i, lb in
                                                                          enumerate(labels)},
             "words": lambda: suggest_codes(labels, tokenizer)}[codes]()
    changes = {"label_codes": table}
    if rubric == "listing":
        changes["rubric"] = listing_rubric(table)
    return config.replace({"data": changes})


def cost(args) -> list[dict]:
    from studio.door.data import check_data, tokenizer_for
    from studio.evaluate.evaluation import make_scorer
    from studio.models.trained import run_model
    from studio.door.labels import config_for_file
    from studio.door.training import start

    out = []
    folder = Path(tempfile.mkdtemp(prefix="many-cost-"))
    for k in args.sizes:
        data = first_intents(args.data, k, folder)
        base = with_model(config_for_file(data), args)
        tokenizer, _ = tokenizer_for(base.model.name)
        for rubric in args.cost_rubrics:
            config = base
            if rubric == "listing":  # every code named on every row: it needs room (1,190 tokens at 151 classes)
                config = variant(base, "words", rubric, tokenizer).replace({"model": {"max_seq_length": 2048}})
            checked = check_data(config, config.model.name).prepared
            lengths = checked.train_lengths
            config = config.replace({"train": {"max_steps": args.steps, "time_budget_minutes": 0, "eval_steps": 0}})
            began = time.time()
            run = start(config, runs_dir=folder / "runs").job
            run.wait()
            status = json.loads((run.run.path / "status.json").read_text())
            records = [json.loads(x) for x in (run.run.path / "metrics.jsonl").read_text().splitlines()]
            steps = [r for r in records if r.get("kind") == "train"]
            rows_per_s = None
            if len(steps) > 2:  # the steps after the first (warm-up, compile) over their wall time
                rows = (steps[-1]["epoch"] - steps[0]["epoch"]) * len(checked.train)
                span = steps[-1]["time"] - steps[0]["time"]
                rows_per_s = round(rows / span, 1) if span > 0 and rows else None
            model, tokenizer, _ = run_model(run.run, log=lambda line: None)
            scorer = make_scorer(model, tokenizer, checked)
            texts = list(checked.split.val_a["text"])[: args.score_rows]
            scorer.score(texts[:32])
            t = time.time()
            scorer.score(texts)
            out.append({"measure": "cost", "classes": k, "rubric": rubric,
                        "tokens_per_row": round(sum(lengths) / len(lengths), 1), "train_rows_per_s": rows_per_s,
                        "train_steps": status.get("step"), "train_wall_s": round(time.time() - began, 1),
                        "score_rows_per_s": round(len(texts) / (time.time() - t), 1),
                        "tree_nodes": len(scorer.tree.nodes), "code_paths": len(scorer.code_paths),
                        "tree_in_one_pass": scorer.tree_ok, "tree_gap": scorer.tree_gap})
            print(json.dumps(out[-1]), flush=True)
    return out


def quality(args) -> list[dict]:
    from studio.door.data import check_data, tokenizer_for
    from studio.door.evaluation import evaluate
    from studio.door.labels import config_for_file
    from studio.door.training import start

    runs = Path(tempfile.mkdtemp(prefix="many-quality-"))
    config = with_model(config_for_file(args.data), args)
    if args.max_steps:
        config = config.replace({"train": {"max_steps": args.max_steps, "time_budget_minutes": 0}})
    if args.codes != "words" or args.rubric != "default":
        config = variant(config, args.codes, args.rubric, tokenizer_for(config.model.name)[0])
    clicked = time.time()
    check_data(config, config.model.name)
    started = start(config, runs_dir=runs)
    started.job.wait()
    trained = time.time()
    evaluated = evaluate(started.run.name, runs_dir=runs, log=lambda line: None)
    done = time.time()
    tested = evaluate(started.run.name, runs_dir=runs, data=args.test, log=lambda line: None)
    report, test = evaluated.report, tested.report
    row = {"measure": "quality", "codes": args.codes, "rubric": args.rubric, "state": started.job.state,
           "train_s": round(trained - clicked, 1), "evaluate_s": round(done - trained, 1),
           "start_to_evaluated_s": round(done - clicked, 1), "test_s": round(time.time() - done, 1),
           "chosen": report["chosen"]["name"], "rule": report["chosen"]["rule"],
           "val_a_macro_f1": {n: round(c["val_a"]["macro_f1"], 4) for n, c in report["candidates"].items()},
           "test": {n: {"accuracy": round(c["val_a"]["accuracy"], 4),
                        **{k: v for k, v in (c["val_a"].get("out_of_scope") or {}).items() if k != "label"}}
                    for n, c in test["candidates"].items()},
           "test_in_use": test["chosen"]["name"],
           "phases_s": json.loads((started.run.path / "run.json").read_text()).get("phases")}
    print(json.dumps(row), flush=True)
    return [row]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("measure", choices=["cost", "quality"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--test")
    parser.add_argument("--out", required=True)
    parser.add_argument("--codes", default="words", choices=["words", "letters", "numbers"])
    parser.add_argument("--rubric", default="default", choices=["default", "listing"])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="cost: class counts")
    parser.add_argument("--steps", type=int, default=12, help="cost: training steps per size and rubric")
    parser.add_argument("--cost-rubrics", nargs="+", default=["default", "listing"], choices=["default", "listing"],
                        help="cost: the rubrics measured")
    parser.add_argument("--model", default=None, help="a smoke test's model folder (default: the default model)")
    parser.add_argument("--max-steps", type=int, default=None, help="quality: a smoke test's few steps")
    parser.add_argument("--score-rows", type=int, default=256, help="cost: Val A rows scored per size and rubric")
    args = parser.parse_args(argv)
    rows = cost(args) if args.measure == "cost" else quality(args)
    with open(args.out, "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
