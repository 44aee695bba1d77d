"""Measure peak reserved GPU memory of real studio runs over a grid of configurations, to calibrate and check
``studio.estimate`` (the "Will it fit?" estimate).

Each configuration is one studio run (``start_training``, the worker thread, as the UI starts it) in its own process
and working folder, on a random-init model of a real shape, with rows long enough that every row is cut to exactly
``max_seq_length`` tokens (the worst case the estimate is for). Several processes share the GPU at once: each
process's ``torch.cuda.max_memory_reserved`` is its own, so the figures do not depend on the others.

    python bench/vram_calibration.py --models 0.5b=/tmp/q05 1.5b=/tmp/q15 --grid standard --parallel 4 --out out.json

Every record holds the config, the measured peak reserved / allocated memory, the memory in use before the first
step (weights + adapter), the CUDA context, and the studio's estimate for the same config.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # our `studio`, never the one unsloth's wheel installs

GIB = 2**30
# The grid: 0.5B and 1.5B shapes, 4-bit and 16-bit, r 16/32/64, batch 1/4/8, seq 256/1024. Six points per
# (shape, bits) cover every level of every knob; the extras probe settings outside the grid (checkpointing off or
# plain, fp32 Adam, attention-only) and are checks of the estimate, not part of the grid.
GRID_POINTS = [(16, 1, 256), (16, 8, 1024), (32, 4, 1024), (64, 8, 256), (64, 1, 1024), (32, 4, 256)]
EXTRAS = [
    {"bits": 16, "r": 16, "batch": 8, "seq": 1024, "gc": "true"},
    {"bits": 16, "r": 16, "batch": 4, "seq": 256, "gc": "false"},
    {"bits": 4, "r": 64, "batch": 4, "seq": 1024, "optim": "adamw_torch"},
    {"bits": 4, "r": 16, "batch": 8, "seq": 1024, "targets": "attention"},
    {"bits": 4, "r": 16, "batch": 2, "seq": 2048},
    {"bits": 16, "r": 32, "batch": 16, "seq": 512},
]


# Held out of the fit: a larger shape (3B), and the transformers + peft backend the fit did not see.
HOLDOUT = [
    {"shape": "3b", "bits": 4, "r": 16, "batch": 4, "seq": 1024},
    {"shape": "3b", "bits": 16, "r": 32, "batch": 8, "seq": 512},
    {"shape": "3b", "bits": 4, "r": 64, "batch": 2, "seq": 2048},
    {"shape": "3b", "bits": 16, "r": 16, "batch": 1, "seq": 256},
    {"shape": "0.5b", "bits": 16, "r": 16, "batch": 8, "seq": 1024, "backend": "transformers"},
    {"shape": "0.5b", "bits": 4, "r": 16, "batch": 8, "seq": 1024, "backend": "transformers"},
    {"shape": "0.5b", "bits": 16, "r": 64, "batch": 4, "seq": 256, "backend": "transformers"},
    {"shape": "0.5b", "bits": 4, "r": 32, "batch": 1, "seq": 1024, "backend": "transformers"},
]


def grid(shapes: list[str], which: str) -> list[dict]:
    if which == "holdout":
        return [{**p, "set": "holdout"} for p in HOLDOUT if p["shape"] in shapes]
    points = []
    for shape, bits in itertools.product(shapes, (4, 16)):
        for r, batch, seq in GRID_POINTS:
            points.append({"shape": shape, "bits": bits, "r": r, "batch": batch, "seq": seq, "set": "grid"})
    if which in ("standard", "extras"):
        for shape in shapes:
            points += [{"shape": shape, "set": "extra", **e} for e in EXTRAS]
        if which == "extras":
            points = [p for p in points if p["set"] == "extra"]
    return points


def write_long_rows(path: Path, rows: int = 200, words: int = 2600) -> Path:
    """Two classes of long texts built from the sample data's words: every row is truncated to max_seq_length."""
    import pandas as pd

    from studio.config import SAMPLE_DATA

    vocab = " ".join(pd.read_csv(SAMPLE_DATA)["text"]).split()
    rng = random.Random(0)
    texts = [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(rows)]
    labels = ["Rules Question" if i % 5 == 0 else "Other" for i in range(rows)]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def run_config(point: dict, model_dir: str, data: str):
    from studio.config import ALL_PROJECTIONS, ATTENTION_ONLY, RunConfig

    return RunConfig().replace({
        "name": "cal", "data": {"path": data, "balance": "natural"},
        "model": {"name": model_dir, "max_seq_length": point["seq"], "load_in_4bit": point["bits"] == 4,
                  "backend": point.get("backend", "unsloth")},
        "lora": {"r": point["r"], "lora_alpha": 16, "use_gradient_checkpointing": point.get("gc", "unsloth"),
                 "use_rslora": point["r"] >= 32,
                 "target_modules": ATTENTION_ONLY if point.get("targets") == "attention" else ALL_PROJECTIONS},
        "train": {"per_device_train_batch_size": point["batch"], "gradient_accumulation_steps": 1,
                  "max_steps": point.get("steps", 5), "warmup_steps": 1, "save_steps": 1000,
                  "optim": point.get("optim", "adamw_8bit"), "eval_steps": 0},
    })


def measure_one(point: dict, model_dir: str, data: str) -> dict:
    """In this process: one studio run; the peak memory it reserved."""
    import torch
    from transformers import TrainerCallback

    from studio.train.worker import start_training

    seen = {}

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            seen["before_first_step_gb"] = torch.cuda.memory_allocated() / GIB
            seen["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
            seen["lora_dtype"] = str(next(p.dtype for p in model.parameters() if p.requires_grad))

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                seen["step1_peak_reserved_gb"] = torch.cuda.max_memory_reserved() / GIB

    torch.cuda.init()
    torch.ones(1, device="cuda") @ torch.ones(1, device="cuda")  # cuBLAS loaded: the context as training sees it
    free, total = torch.cuda.mem_get_info()
    config = run_config(point, model_dir, data)
    started = time.time()
    job = start_training(config, Path.cwd() / "runs", callbacks=[Probe()])
    job.wait()
    record = {**point, "state": job.state, "error": job.error, "seconds": round(time.time() - started, 1),
              "peak_reserved_gb": torch.cuda.max_memory_reserved() / GIB,
              "peak_allocated_gb": torch.cuda.max_memory_allocated() / GIB,
              "gpu_total_gb": total / GIB, "gpu_free_at_start_gb": free / GIB, **seen}
    last = job.stream.last("train") or {}
    record["tokens_per_step"] = None if not last else last.get("tokens_seen", 0) / max(1, last.get("step", 1))
    memory = job.run.path / "memory.json"
    if memory.exists():  # the engine's own record: estimate beside measured
        record["engine_memory"] = json.loads(memory.read_text())
    try:
        from studio.estimate.vram import estimate_for_config

        est = estimate_for_config(config, gpu_total_gb=total / GIB)
        record["estimate_gb"] = est.peak_reserved_gb
        record["estimate_parts"] = est.parts
    except ImportError:
        pass
    return record


def context_overhead_gb() -> float:
    """GPU memory a process uses outside PyTorch's allocator (CUDA context, cuBLAS): used - reserved."""
    code = ("import torch; torch.cuda.init(); a=torch.randn(256,256,device='cuda'); (a@a).sum().item(); "
            "f,t=torch.cuda.mem_get_info(); print((t-f-torch.cuda.memory_reserved())/2**30)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=[], help="shape=folder pairs, e.g. 0.5b=/tmp/q05")
    parser.add_argument("--grid", default="standard", choices=["grid", "standard", "extras", "holdout"])
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--out", required=True)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: JSON of one point (model, data)
    args = parser.parse_args()

    if args.one:
        job = json.loads(args.one)
        print("RESULT " + json.dumps(measure_one(job["point"], job["model"], job["data"])), flush=True)
        return 0

    models = dict(m.split("=", 1) for m in args.models)
    work = Path(tempfile.mkdtemp(prefix="vram-cal-"))
    data = str(write_long_rows(work / "long_rows.csv"))
    points = grid(list(models), args.grid)
    results: list[dict] = []
    context = context_overhead_gb()
    print(f"CUDA context outside the allocator: {context:.3f} GiB; {len(points)} configurations", flush=True)

    def launch(index_point):
        index, point = index_point
        cwd = work / f"p{index:02d}"  # Unsloth compiles into ./unsloth_compiled_cache: one folder per process
        cwd.mkdir()
        payload = json.dumps({"point": point, "model": models[point["shape"]], "data": data})
        env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"}
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", payload, "--out", "-"],
                              cwd=cwd, env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if lines:
            record = json.loads(lines[-1][7:])
        else:
            record = {**point, "state": "crashed", "error": proc.stderr[-1500:]}
        record["cuda_context_gb"] = context
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in record.items()
                          if k not in ("estimate_parts", "engine_memory")}), flush=True)
        results.append(record)
        Path(args.out).write_text(json.dumps(results, indent=1))
        return record

    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(launch, enumerate(points)))
    return 0 if all(r.get("state") == "finished" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
