"""A real out-of-memory on the GPU, through the studio engine, and the run after it.

The process is capped at ``--cap-gb`` of the GPU (``torch.cuda.set_per_process_memory_fraction``: PyTorch's allocator
refuses anything beyond, exactly as a smaller card would), then:

1. a run whose batch cannot fit (16-bit, no gradient checkpointing, batch 16 × 1024 tokens): it must fail with
   error_kind "oom", the guide's levers, the config/log/status kept on disk, and the GPU memory released
   (``memory_reserved`` measured after);
2. the next run in the same process (batch 1 × 256, as the first lever says): it must finish.

The studio's estimate ("Will it fit?") for both configs is printed beside what happened.

    python bench/device/oom_check.py --model /tmp/q05 --cap-gb 6 --out $OUT/oom.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # our `studio`, never the one unsloth's wheel installs
sys.path.insert(0, str(REPO / "bench"))

GIB = 2**30


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--cap-gb", type=float, default=6.0)
    parser.add_argument("--runs-dir", default="/tmp/oom-runs")
    parser.add_argument("--out")
    args = parser.parse_args()

    import gc
    import weakref

    import torch
    from transformers import TrainerCallback

    from studio.train.worker import start_training

    class Grab(TrainerCallback):  # a weak reference to the model: is it really gone after the failure?
        ref = None

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            Grab.ref = weakref.ref(model)
    from vram_calibration import run_config, write_long_rows

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(args.cap_gb * GIB / total)
    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    data = str(write_long_rows(Path(args.runs_dir) / "long_rows.csv"))
    results = []
    for name, point in (("too big", {"bits": 16, "r": 16, "batch": 16, "seq": 1024, "gc": "false", "steps": 3}),
                        ("after it", {"bits": 16, "r": 16, "batch": 1, "seq": 256, "steps": 3})):
        config = run_config(point, args.model, data)
        estimate = None
        try:
            from studio.estimate.vram import estimate_for_config

            est = estimate_for_config(config, gpu_total_gb=args.cap_gb)
            estimate = {"peak_reserved_gb": round(est.peak_reserved_gb, 3), "needed_gb": round(est.needed_gb, 3),
                        "verdict": est.verdict}
        except ImportError:
            pass
        torch.cuda.reset_peak_memory_stats()
        job = start_training(config, args.runs_dir, callbacks=[Grab()])
        job.wait()
        gc.collect()
        alive = Grab.ref() if Grab.ref else None
        holders = [type(r).__name__ + (":" + ",".join(list(r)[:8]) if isinstance(r, dict) else "")
                   for r in gc.get_referrers(alive)][:12] if alive is not None else []
        alive_after = alive is not None
        del alive
        run = job.run
        record = {"run": name, "config": point, "state": job.state, "error_kind": job.error_kind,
                  "error": job.error, "levers": job.levers, "estimate": estimate,
                  "model_alive_after": alive_after, "model_holders": holders,
                  "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / GIB, 3),
                  "reserved_after_gb": round(torch.cuda.memory_reserved() / GIB, 3),
                  "allocated_after_gb": round(torch.cuda.memory_allocated() / GIB, 3),
                  "files_kept": sorted(p.name for p in run.path.iterdir()),
                  "status": json.loads(run.status_path.read_text())}
        print(json.dumps(record, indent=1), flush=True)
        results.append(record)
        job.model = None
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    ok = (results[0]["state"] == "failed" and results[0]["error_kind"] == "oom" and results[0]["levers"]
          and results[1]["state"] == "finished")
    print("OOM CHECK", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
