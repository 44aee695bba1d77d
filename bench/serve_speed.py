"""A trained classifier at work, all in one run on one machine: offline batch ``predict`` rows/s; the REST server's
rows/s and p50 / p99 request latency at 1, 8 and 32 concurrent clients, with single texts and with batches of 32; and
``predict`` over a large file: rows/s and memory (RSS) from the first chunk to the end.

    python bench/serve_speed.py --run runs/my-run --data ../shared/datasets/financial_phrasebank.csv
    python bench/serve_speed.py --run runs/my-run --data posts.csv --big-rows 200000 --json serve.json

The server runs as its own process (``python -m studio serve``), the clients as threads of this one; the large-file
prediction runs as ``python -m studio predict`` with its memory sampled every 0.1 s. Prints a Markdown table and one
JSON line (for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def texts_of(path: str, column: str | None, n: int) -> list[str]:
    from studio.data.readers import read_table
    from studio.data.table import detect_text_column

    frame = read_table(path).frame
    column = column or detect_text_column(frame)
    texts = [t for t in frame[column].dropna().astype(str) if t.strip()]
    return [texts[i % len(texts)] for i in range(n)]


def offline(run: str, texts: list[str], use: str | None, folder: Path) -> dict:
    """``predict`` over a file of the texts, in this process, after the model is loaded and warm."""
    from studio import Classifier

    clf = Classifier.load(run, use=use, log=lambda m: None)
    clf.predict(texts[:32])  # warm: the model loaded, kernels and allocator ready
    src = folder / "offline.csv"
    pd.DataFrame({"text": texts}).to_csv(src, index=False)
    started = time.perf_counter()
    written = clf.predict_file(src, folder / "offline-out.csv", restart=True)
    seconds = time.perf_counter() - started
    return {"rows": written.rows, "seconds": round(seconds, 2), "rows_per_s": round(written.rows / seconds, 1),
            "classifier": clf.info["classifier"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: str, use: str | None, max_batch: int):
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "studio", "serve", run, "--port", str(port), "--max-batch", str(max_batch)]
    server = subprocess.Popen(command + (["--use", use] if use else []), cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return server, url
        except httpx.TransportError:
            if server.poll() is not None:
                raise SystemExit(f"the server did not start: {server.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise SystemExit("the server did not answer within 120 s")


def load_test(url: str, texts: list[str], clients: int, per_request: int) -> dict:
    """``clients`` threads share the texts, each posting ``per_request`` texts at a time, one request after
    another."""
    import httpx

    requests = [texts[i:i + per_request] for i in range(0, len(texts), per_request)]
    latencies: list[float] = []
    lock = threading.Lock()
    queue = iter(requests)

    def client(_):
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    batch = next(queue, None)
                if batch is None:
                    return
                started = time.perf_counter()
                answer = http.post(f"{url}/v1/classify", json={"texts": batch})
                answer.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    seconds = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"clients": clients, "texts_per_request": per_request, "requests": len(requests),
            "rows_per_s": round(len(texts) / seconds, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def large_file(run: str, texts: list[str], rows: int, use: str | None, folder: Path) -> dict:
    """``python -m studio predict`` over ``rows`` rows, its RSS sampled: at the first chunk written (model loaded)
    and at its peak."""
    import psutil

    src = folder / "large.csv"
    pd.DataFrame({"id": range(rows), "text": [texts[i % len(texts)] for i in range(rows)]}).to_csv(src, index=False)
    out = folder / "large-out.csv"
    command = [sys.executable, "-m", "studio", "predict", run, str(src), "-o", str(out), "--quiet", "--restart"]
    started = time.perf_counter()
    proc = subprocess.Popen(command + (["--use", use] if use else []), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watched, first, peak, first_at = psutil.Process(proc.pid), None, 0, None
    partial = out.with_name(out.name + ".partial")
    while proc.poll() is None:
        try:
            rss = watched.memory_info().rss
        except psutil.Error:
            break
        peak = max(peak, rss)
        if first is None and any(partial.glob("chunk-*.csv")):
            first, first_at = rss, time.perf_counter()
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"predict failed: {stderr[-2000:]}")
    seconds = time.perf_counter() - (first_at or started)
    written = sum(1 for _ in open(out, encoding="utf-8")) - 1
    return {"rows": rows, "written": written, "rows_per_s_after_load": round(rows / seconds, 1),
            "rss_first_chunk_mb": round((first or peak) / 2**20), "rss_peak_mb": round(peak / 2**20),
            "growth_mb": round((peak - (first or peak)) / 2**20), "classifier": use or "in use"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder or classifier bundle")
    parser.add_argument("--data", required=True, help="a file whose texts are classified")
    parser.add_argument("--text-col")
    parser.add_argument("--use", choices=["llm", "classic", "blend"], help="default: the classifier in use")
    parser.add_argument("--rows", type=int, default=512, help="texts per offline / server measurement")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--big-rows", type=int, default=200_000, help="rows of the large-file prediction")
    parser.add_argument("--big-use", default="classic", help="the candidate for the large file (default classic: "
                                                              "200k rows through the LLM take hours on a CPU)")
    parser.add_argument("--llm-rows", type=int, default=2000, help="rows of a second large-file prediction through "
                                                                   "the fine-tuned LLM (0: none)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    texts = texts_of(args.data, args.text_col, args.rows)
    folder = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    results = {"device": platform.processor() or platform.machine(), "run": args.run,
               "offline": offline(args.run, texts, args.use, folder)}
    progress(f"offline: {results['offline']}")
    server, url = start_server(args.run, args.use, args.max_batch)
    results["server"] = []
    try:
        load_test(url, texts[:64], 8, 1)  # warm
        for per in (1, 32):
            for clients in (1, 8, 32):
                results["server"].append(load_test(url, texts if per == 1 else texts * 2, clients, per))
                progress(f"server: {results['server'][-1]}")
    finally:
        server.terminate()
        server.wait(30)
    results["large"] = []
    for rows, use in ((args.big_rows, args.big_use), (args.llm_rows, "llm")):
        if rows:
            results["large"].append(large_file(args.run, texts, rows, use, folder))
            progress(f"large: {results['large'][-1]}")
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


def progress(line: str) -> None:
    """Each measurement as it ends, so a run cut short still leaves what it measured."""
    print(line, file=sys.stderr, flush=True)


def report(results: dict) -> None:
    off = results["offline"]
    print(f"\nOffline predict ({off['classifier']}): {off['rows_per_s']} rows/s over {off['rows']} rows\n")
    print("| clients | texts per request | rows/s | × offline | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for r in results["server"]:
        print(f"| {r['clients']} | {r['texts_per_request']} | {r['rows_per_s']} | "
              f"{r['rows_per_s'] / off['rows_per_s']:.2f} | {r['p50_ms']} | {r['p99_ms']} |")
    for big in results["large"]:
        print(f"\nLarge file: {big['rows']:,} rows ({big['classifier']}), {big['rows_per_s_after_load']} rows/s, RSS "
              f"{big['rss_first_chunk_mb']} MB at the first chunk → peak {big['rss_peak_mb']} MB "
              f"(+{big['growth_mb']} MB)")


if __name__ == "__main__":
    main()
