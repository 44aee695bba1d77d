"""The first classifier: seconds from an upload to a classifier the person can use, on this machine, with the
defaults. Two parts, as a person meets them: the upload's data check (what the Data tab runs on a new file, with the
model's tokenizer and the "how hard is this data" hint), then ``python -m studio train`` from its process start to
the run record's first classifier (the classic model fitted and evaluated on Val A / Val B). The LLM's training is
then stopped: this benchmark measures the wait for the first classifier only.

    python bench/first_classifier.py ../shared/datasets/financial_phrasebank.csv
    python bench/first_classifier.py ../shared/datasets/clinc150_train.csv --rows 5000

Prints one JSON line per file (for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def sample(path: Path, rows: int | None, folder: Path) -> Path:
    """The file itself, or its first ``rows`` rows after a seeded shuffle (a 5,000-row upload)."""
    if not rows:
        return path
    import pandas as pd

    frame = pd.read_csv(path)
    out = folder / f"{path.stem}-{rows}.csv"
    frame.sample(n=min(rows, len(frame)), random_state=0).to_csv(out, index=False)
    return out


def data_check_seconds(path: Path) -> tuple[float, int]:
    from studio.config import RunConfig
    from studio.door.data import check_data

    config = RunConfig().replace({"data": {"path": str(path)}})
    started = time.perf_counter()
    checked = check_data(config, config.model.name, difficulty=True, log=lambda m: None)
    return time.perf_counter() - started, len(checked.prepared.table.frame)


def first_classifier_seconds(path: Path, runs: Path, timeout: float = 600) -> dict:
    """``studio train`` with the defaults, from its process start until the run record holds a first classifier."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", "--data", str(path), "--runs-dir", str(runs),
                             "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        while time.perf_counter() - started < timeout:
            for record_path in runs.glob("*/run.json"):
                try:
                    record = json.loads(record_path.read_text())
                except (OSError, ValueError):
                    continue
                first = (record.get("classifier") or {}).get("first")
                if first:
                    seconds = time.perf_counter() - started
                    figures = (record.get("eval_summary") or {}).get("chosen_val_a") or {}
                    return {"process_start_to_first_s": round(seconds, 1), "after_run_created_s":
                            first.get("after_start_s"), "fit_and_evaluate_s": first.get("seconds"),
                            "val_a_macro_f1": figures.get("macro_f1"), "training_rows": first.get("training_rows")}
            if proc.poll() is not None:
                raise RuntimeError(f"train ended before its first classifier: {proc.stderr.read()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("no first classifier within the timeout")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the LLM's training is not what this measures
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--rows", type=int, default=None, help="a seeded sample of this many rows of each file")
    args = parser.parse_args()
    for path in args.files:
        with tempfile.TemporaryDirectory(prefix="first-classifier-") as tmp:
            data = sample(path.resolve(), args.rows, Path(tmp))
            check_s, rows = data_check_seconds(data)
            first = first_classifier_seconds(data, Path(tmp) / "runs")
            total = check_s + first["process_start_to_first_s"]
            print(json.dumps({"file": path.name, "rows": rows, "data_check_s": round(check_s, 1), **first,
                              "upload_to_first_s": round(total, 1), "machine": platform.processor() or
                              platform.machine(), "cpus": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
