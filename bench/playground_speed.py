"""The Playground as a person uses it: one text typed, its label from the classifier in use, every candidate's
probabilities and the untrained model's. Seconds per question (the first, which loads the model, apart) and the
label-scoring passes each question costs, for the studio checked out beside this script (run it from another
checkout to compare: ``--repo``).

    python bench/playground_speed.py --run runs/my-run --data ../shared/datasets/financial_phrasebank.csv
    python bench/playground_speed.py --repo /tmp/old-checkout --run runs/my-run --data ... --json old.json

The run must be evaluated (its three candidates chosen among). Prints one JSON line (for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent), help="the studio to time")
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True, help="a file whose texts are typed in turn")
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, args.repo)
    import pandas as pd

    from studio.door.predict import classify
    from studio.machine import cpu_name
    try:
        from studio.classifier import scoring  # the classifier room
    except ImportError:
        from studio.evaluate import scoring  # before it

    passes = []
    original = scoring.LabelScorer.score

    def counted(self, texts, *a, **k):
        passes.append(len(texts))
        return original(self, texts, *a, **k)

    scoring.LabelScorer.score = counted
    frame = pd.read_csv(args.data)
    column = next(c for c in frame.columns if frame[c].astype(str).str.len().mean() > 20)
    texts = list(frame[column].astype(str).sample(n=args.questions + 1, random_state=0))
    runs_dir = str(Path(args.run).parent)
    seconds, per_question = [], []
    for text in texts:
        before = len(passes)
        started = time.perf_counter()
        shown = classify(args.run, text, runs_dir, log=lambda m: None)
        seconds.append(time.perf_counter() - started)
        per_question.append(len(passes) - before)
    out = {"repo": args.repo, "run": Path(args.run).name, "in_use": shown.in_use, "views": sorted(shown.views),
           "first_s": round(seconds[0], 2), "median_s": round(statistics.median(seconds[1:]), 3),
           "max_s": round(max(seconds[1:]), 3), "scoring_passes_per_question": per_question[1:],
           "questions": len(seconds) - 1, "cpu": cpu_name(), "cores": os.cpu_count()}
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
