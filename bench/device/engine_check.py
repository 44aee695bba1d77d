"""The studio's own engine on the GPU machine, as the UI drives it: the worker thread on the Unsloth backend (4-bit and
16-bit, adamw_8bit, gradient checkpointing "unsloth", periodic evaluation), then evaluation (constrained scoring, in
memory and from the saved run) and exports (adapters, merged 16-bit, merged 4-bit), each checked by reloading.

    python bench/device/engine_check.py --model /tmp/q05 --out $OUT/engine.json

Prints one JSON object per stage; fails loudly (exit 1) on any engine failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # our `studio`, never the one unsloth's wheel installs

import studio  # noqa: E402

assert Path(studio.__file__).resolve().parent == REPO / "studio", studio.__file__


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs-dir", default="/tmp/studio-runs")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 16], choices=[4, 16])
    parser.add_argument("--out")
    args = parser.parse_args()

    import torch

    from studio.config import RunConfig
    from studio.evaluate.saved_run import evaluate_run
    from studio.export.exporter import export_run
    from studio.train.worker import start_training

    results = []
    for bits in args.bits:
        config = RunConfig().replace({
            "name": f"unsloth-{bits}bit",
            "model": {"name": args.model, "max_seq_length": 512, "load_in_4bit": bits == 4, "backend": "unsloth"},
            "lora": {"use_gradient_checkpointing": "unsloth"},
            "train": {"max_steps": args.steps, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                      "optim": "adamw_8bit", "eval_steps": 10, "eval_max_rows": 64}})
        torch.cuda.reset_peak_memory_stats()
        started = time.time()
        job = start_training(config, args.runs_dir)
        job.wait()
        record = {"stage": "train", "bits": bits, "state": job.state, "error": job.error,
                  "backend": job.backend, "seconds": round(time.time() - started, 1),
                  "last": job.stream.last("train"), "evals": job.stream.records("eval")}
        print(json.dumps(record, default=str), flush=True)
        results.append(record)
        if job.state != "finished":
            print(job.log_tail(80), file=sys.stderr)
            return _finish(results, args.out, 1)
        loaded = (job.model, job.tokenizer, job.run.adapter_card())
        for name, kwargs in (("eval in memory", {"loaded": loaded}), ("eval from disk", {})):
            t = time.time()
            _, report = evaluate_run(job.run.path, args.runs_dir, untrained=True, **kwargs)
            record = {"stage": name, "bits": bits, "seconds": round(time.time() - t, 1),
                      **{k: {m: report[k][m] for m in ("n", "accuracy", "macro_f1", "minority_recall")}
                         for k in ("val_a", "val_b")}}
            print(json.dumps(record), flush=True)
            results.append(record)
        for fmt in ("adapters", "merged_16bit", "merged_4bit"):
            t = time.time()
            try:
                res = export_run(job.run.path, fmt, runs_dir=args.runs_dir, loaded=loaded, log=lambda m: None)
                record = {"stage": "export", "bits": bits, "format": fmt, "agreement": res.agreement,
                          "rows": res.verified_rows, "passed": res.passed, "seconds": round(time.time() - t, 1),
                          "files": res.files}
            except Exception as exc:  # report every export, then fail
                record = {"stage": "export", "bits": bits, "format": fmt, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(record), flush=True)
            results.append(record)
        job.model = None
        torch.cuda.empty_cache()
    failed = any(r.get("error") or r.get("passed") is False for r in results)
    return _finish(results, args.out, 1 if failed else 0)


def _finish(results, out, code):
    if out:
        Path(out).write_text(json.dumps(results, indent=2, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
