"""Where the first evaluation after an Unsloth run spends its time, in the web app's one process: train with the
defaults (``door.training.start``), then evaluate the model kept in memory (``door.evaluation.evaluate``) with the
scorer's calls timed, torch.compile's counters before and after, and the main thread's stack sampled every
``--dump-every`` seconds while it runs. It found the 2-minute wait (docs/benchmarks.md, "Start to evaluated on a
GPU"). ``--variant``: ``as-is``; ``old-order`` (the stack imported before scipy.special, as before that fix: skops'
first import then walks transformers' lazy modules); ``autocast`` (score under bfloat16 autocast, as the periodic
evaluations inside training do); ``eager`` (score with torch.compile's regions run eagerly:
``torch.compiler.set_stance("force_eager")``); ``fresh`` (drop the kept model: evaluate a freshly loaded one).

    python3 bench/device/first_eval_profile.py --data F --variant as-is --out $OUT/as-is
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]  # the studio, and start_to_evaluated beside it


def timed_scorer(calls: list) -> None:
    """Record the wall time of the scorer's prefix pass and of each batch (synchronised on a GPU)."""
    import torch

    from studio.classifier.scoring import LabelScorer

    def wrap(name, method):
        @functools.wraps(method)
        def timed(self, *args, **kwargs):
            started = time.perf_counter()
            out = method(self, *args, **kwargs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            calls.append({"call": name, "s": round(time.perf_counter() - started, 3),
                          "at": round(time.time(), 2), "rows": len(args[0]) if args else None,
                          "width": max(map(len, args[0])) if args and name == "batch" else None})
            return out
        return timed

    LabelScorer._prefix_kv = wrap("prefix", LabelScorer._prefix_kv)
    LabelScorer._score_batch = wrap("batch", LabelScorer._score_batch)


class StackSampler(threading.Thread):
    """Every ``every`` seconds, the main thread's stack (innermost 30 frames) into a file: where the time goes."""

    def __init__(self, path: Path, every: float):
        super().__init__(daemon=True)
        self.path, self.every, self.main = path, every, threading.main_thread().ident
        self.stopped = threading.Event()
        self.started_at = time.time()

    def run(self) -> None:
        with open(self.path, "w") as f:
            while not self.stopped.wait(self.every):
                frame = sys._current_frames().get(self.main)
                if frame is not None:
                    f.write(f"--- +{time.time() - self.started_at:.1f} s\n")
                    f.writelines(traceback.format_stack(frame)[-30:])
                    f.flush()


def compile_counters() -> dict:
    from torch._dynamo.utils import counters

    return {group: dict(values) for group, values in counters.items() if group in ("stats", "frames", "recompiles",
                                                                                   "graph_break", "inductor")}


def variant_context(variant: str):
    import torch

    if variant == "eager":
        return torch.compiler.set_stance("force_eager")
    if variant == "autocast":
        from studio.evaluate import evaluation

        evaluation.inference_autocast = lambda device: torch.bfloat16
    return contextlib.nullcontext()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--variant", choices=("as-is", "old-order", "autocast", "eager", "fresh"), default="as-is")
    parser.add_argument("--out", required=True, help="a folder: profile.json and stacks.txt")
    parser.add_argument("--runs", default=None)
    parser.add_argument("--dump-every", type=float, default=15.0)
    parser.add_argument("--model", default=None, help="another model (a smoke test: a tiny model folder)")
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = Path(args.runs or f"/tmp/first-eval-{args.variant}")
    launched = time.time()
    if args.variant == "old-order":
        from studio import machine

        machine.IMPORTED_BEFORE_THE_STACK = ()
    from start_to_evaluated import as_the_web_app

    from studio.door import evaluation, training

    config, _ = as_the_web_app(args.data, model=args.model, max_steps=args.max_steps)
    report: dict = {"variant": args.variant, "data": args.data, "imported_s": round(time.time() - launched, 1)}
    path = out_dir / "profile.json"
    clicked = time.time()
    started = training.start(config, runs_dir=runs)
    started.job.wait()
    saved = time.time()
    report.update(train_s=round(saved - clicked, 1), state=started.job.state, compile_before=compile_counters())
    path.write_text(json.dumps(report, indent=2))
    if args.variant == "fresh":
        started.job.model = None
    calls: list = []
    timed_scorer(calls)
    progress: list = []
    sampler = StackSampler(out_dir / "stacks.txt", args.dump_every)
    sampler.start()
    try:
        with variant_context(args.variant):
            evaluated = evaluation.evaluate(started.run.name, runs_dir=runs, log=lambda line: None,
                                            progress=lambda m, f: progress.append((round(time.time() - saved, 1),
                                                                                   m)))
    finally:
        sampler.stopped.set()
        sampler.join()
    done = time.time()
    from torch._dynamo.utils import compile_times

    report.update(evaluate_s=round(done - saved, 1), start_to_evaluated_s=round(done - clicked, 1),
                  val_a_macro_f1=evaluated.report["val_a"]["macro_f1"],
                  baseline_val_a_macro_f1=(evaluated.report.get("baseline") or {}).get("val_a", {}).get("macro_f1"),
                  compile_after=compile_counters(), compile_times=compile_times(repr="str"),
                  progress=progress[:12] + progress[-4:], scorer_calls=[
                      {**c, "at": round(c["at"] - saved, 2)} for c in calls])
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("scorer_calls", "compile_times")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
