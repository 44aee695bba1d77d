"""Many rows: a generated CSV (default 200,000 rows, ~90/10, with duplicates, conflicts and blank rows) through the
data side the way Check data and `python -m studio inspect` run it: read → validate → codes → stratified split →
balance; then the same with a tokenizer (token counts and truncation to max_seq_length, as training does).
Reports seconds and the process's peak memory (RSS high-water mark) for each stage.

    python bench/large_data.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_rows(path: Path, rows: int, seed: int = 0) -> Path:
    import pandas as pd

    from studio.config import SAMPLE_DATA

    sample = pd.read_csv(SAMPLE_DATA)
    words = " ".join(sample["text"]).split()
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(rows):
        minority = rng.random() < 0.1
        n = rng.randint(5, 60)
        texts.append(("rules: " if minority else "") + " ".join(rng.choice(words) for _ in range(n)) + f" #{i}")
        labels.append("Rules Question" if minority else "Other")
    for i in range(0, rows, 1000):  # some exact duplicates, some blank texts
        texts[i + 1] = texts[i]
        labels[i + 1] = labels[i]
        texts[i + 2] = ""
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--with-tokenizer", action="store_true", help="also count tokens and fit max_seq_length")
    parser.add_argument("--json")
    args = parser.parse_args()

    from studio.config import DataRecipe
    from studio.data.prepare import prepare_data

    out = {"rows": args.rows, "baseline_rss_mb": round(peak_rss_mb(), 1)}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_rows(Path(tmp) / "many.csv", args.rows)
        out["file_mb"] = round(path.stat().st_size / 2**20, 1)
        out["rss_after_writing_mb"] = round(peak_rss_mb(), 1)
        started = time.perf_counter()
        prepared = prepare_data(DataRecipe(path=str(path)))
        out["prepare_s"] = round(time.perf_counter() - started, 2)
        out["peak_rss_mb"] = round(peak_rss_mb(), 1)
        out["usable_rows"] = prepared.table.summary()["rows"]
        out["counts"] = prepared.counts()
        if args.with_tokenizer:
            from studio.models.tiny import build_tokenizer

            tokenizer = build_tokenizer(4096)
            started = time.perf_counter()
            prepared = prepare_data(DataRecipe(path=str(path)), tokenizer, 256)
            out["prepare_with_tokenizer_s"] = round(time.perf_counter() - started, 2)
            out["peak_rss_with_tokenizer_mb"] = round(peak_rss_mb(), 1)
            out["longest_row_tokens"] = max(prepared.train_lengths)
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
