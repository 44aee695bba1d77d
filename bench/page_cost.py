"""What the open Train tab costs the training it watches, measured inside one run: the web app trains the defaults
(started from chromium), and the page is open on the Train tab, then closed, then open again, in alternating windows
of the same length. Per window: tokens trained per second (from the run's own metrics), chromium's CPU seconds and
the web app process's. One run and alternating windows, so the data's length mix and the machine's state are the
same for both sides (comparing two whole runs mixed in their noise: docs/benchmarks.md).

    python bench/page_cost.py --data ../shared/datasets/financial_phrasebank.csv --windows 6 --window-s 90
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
CHROMIUM = "/usr/bin/chromium"


def cpu_seconds(pids_of) -> float:
    import psutil

    total = 0.0
    for proc in pids_of():
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def chromium_processes():
    import psutil

    return [p for p in psutil.process_iter(["name"]) if "chrom" in (p.info["name"] or "")]


def tokens_at(records: list[dict], elapsed: float) -> float:
    """Tokens trained by ``elapsed`` seconds into training, interpolated between the logged steps."""
    before = [r for r in records if r["elapsed_s"] <= elapsed]
    after = [r for r in records if r["elapsed_s"] > elapsed]
    if not before or not after:
        return float((before or after)[-1 if before else 0]["tokens_seen"])
    a, b = before[-1], after[0]
    share = (elapsed - a["elapsed_s"]) / (b["elapsed_s"] - a["elapsed_s"])
    return a["tokens_seen"] + share * (b["tokens_seen"] - a["tokens_seen"])


def open_train_tab(browser, port: int):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"http://127.0.0.1:{port}/")
    page.get_by_role("tab", name="4 · Train").click()
    return page


def main() -> None:
    from playwright.sync_api import sync_playwright

    from browser_vs_cli import wait_until_up
    from studio.config import RunConfig
    from studio.runs.folder import RunDir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--windows", type=int, default=6, help="alternating windows, starting with the page open")
    parser.add_argument("--window-s", type=float, default=90.0)
    parser.add_argument("--port", type=int, default=7898)
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="page-cost-"))
    runs = work / "runs"
    minutes = (args.windows * args.window_s + 240) / 60  # the run outlasts every window
    config = RunConfig().replace({"data": {"path": str(Path(args.data).resolve())},
                                  "train": {"time_budget_minutes": round(minutes, 1)}})
    config.save(work / "config.json")
    app = subprocess.Popen([sys.executable, "launch.py", "--port", str(args.port), "--runs-dir", str(runs),
                            "--config", str(work / "config.json")], cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    import psutil

    server = psutil.Process(app.pid)
    windows = []
    try:
        wait_until_up(args.port, app)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = open_train_tab(browser, args.port)
            page.click("#start-training")
            run_dir = None
            while run_dir is None:  # the run's folder, then its first logged steps (past the warm-up)
                time.sleep(2)
                found = [d for d in runs.iterdir() if (d / "metrics.jsonl").exists()] if runs.exists() else []
                run_dir = found[0] if found else None
            run = RunDir(run_dir)
            while len([r for r in run.metrics() if r.get("kind") == "train"]) < 5:
                time.sleep(2)
            started = time.time()
            first_elapsed = [r for r in run.metrics() if r.get("kind") == "train"][-1]["elapsed_s"]
            first_wall = time.time()
            for i in range(args.windows):
                open_now = i % 2 == 0
                if open_now and page is None:
                    page = open_train_tab(browser, args.port)
                if not open_now and page is not None:
                    page.close()
                    page = None
                t0 = time.time() - first_wall + first_elapsed
                c0, s0 = cpu_seconds(chromium_processes), cpu_seconds(lambda: [server])
                time.sleep(args.window_s)
                t1 = time.time() - first_wall + first_elapsed
                c1, s1 = cpu_seconds(chromium_processes), cpu_seconds(lambda: [server])
                windows.append({"page": "Train tab open" if open_now else "closed", "t0": t0, "t1": t1,
                                "chromium_cpu_s": round(c1 - c0, 1), "server_cpu_s": round(s1 - s0, 1)})
                print(json.dumps(windows[-1]), flush=True)
            browser.close()
            wall = time.time() - started
    finally:
        app.terminate()
        app.wait(60)
    records = [r for r in run.metrics() if r.get("kind") == "train"]
    for w in windows:  # the elapsed clock of the run's records and the wall clock here run together
        w["tokens_per_s"] = round((tokens_at(records, w["t1"]) - tokens_at(records, w["t0"])) / (w["t1"] - w["t0"]), 1)
    summary = {}
    for side in ("Train tab open", "closed"):
        mine = [w for w in windows if w["page"] == side]
        summary[side] = {"tokens_per_s": round(statistics.mean(w["tokens_per_s"] for w in mine), 1),
                         "chromium_share_of_cores": round(sum(w["chromium_cpu_s"] for w in mine) /
                                                          (args.window_s * len(mine) * (os.cpu_count() or 1)), 3)}
    ratio = summary["Train tab open"]["tokens_per_s"] / summary["closed"]["tokens_per_s"]
    result = {"device": f"{os.cpu_count()}-core CPU", "data": Path(args.data).name, "window_s": args.window_s,
              "windows": windows, "summary": summary, "open_over_closed_tokens_per_s": round(ratio, 3),
              "wall_s": round(wall, 1)}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
