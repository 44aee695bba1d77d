"""What the open Train tab costs the training it watches, measured inside one run: the web app trains the defaults
(started from chromium), and the page is open on the Train tab, then closed, then open again, in alternating windows
of the same length (or --variants: the page with a style injected, to find where chromium's time goes). Per window:
tokens trained per second (from the run's own metrics), chromium's CPU seconds, the web app process's, its training
child's (on a CPU the app trains in a child process), and the page's main-thread time by kind. One run and
alternating windows, so the data's length mix and the machine's state are the same for both sides (comparing two
whole runs mixed in their noise: docs/benchmarks.md).

    python bench/page_cost.py --data ../shared/datasets/financial_phrasebank.csv --windows 6 --window-s 90
    python bench/page_cost.py --data F --variants open open+no-plots open+contain closed --window-s 60
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
from browser_vs_cli import chromium_processes, device, launch_chromium, open_train_tab, wait_until_up  # noqa: E402
# Page variants for --variants (injected into the open page, to find where chromium's time goes):
STYLES = {"no-plots": ".js-plotly-plot, .plot-container { display: none !important; }",
          "contain": "#train-status, #train-log, .js-plotly-plot { contain: strict; }"}


def cpu_seconds(pids_of) -> dict[int, float]:
    import psutil

    out = {}
    for proc in pids_of():
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings: a process that ended in between is not counted (a closed page's renderer),
    a new one counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


RENDERER_METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


def renderer_seconds(page) -> dict[str, float]:
    """The page's main-thread time so far, by kind (Chrome DevTools Protocol, Performance.getMetrics, on the session
    opened with the page: the counters start when Performance is enabled)."""
    if page is None:
        return {}
    metrics = {m["name"]: m["value"] for m in SESSIONS[id(page)].send("Performance.getMetrics")["metrics"]}
    return {k: metrics.get(k, 0.0) for k in RENDERER_METRICS}


SESSIONS: dict = {}


def tokens_at(records: list[dict], elapsed: float) -> float:
    """Tokens trained by ``elapsed`` seconds into training, interpolated between the logged steps."""
    before = [r for r in records if r["elapsed_s"] <= elapsed]
    after = [r for r in records if r["elapsed_s"] > elapsed]
    if not before or not after:
        return float((before or after)[-1 if before else 0]["tokens_seen"])
    a, b = before[-1], after[0]
    share = (elapsed - a["elapsed_s"]) / (b["elapsed_s"] - a["elapsed_s"])
    return a["tokens_seen"] + share * (b["tokens_seen"] - a["tokens_seen"])


def open_watched_page(browser, port: int):
    """The Train tab, with DevTools' performance counters on from the start."""
    page = open_train_tab(browser, port)
    SESSIONS[id(page)] = page.context.new_cdp_session(page)
    SESSIONS[id(page)].send("Performance.enable")
    return page


def main() -> None:
    from playwright.sync_api import sync_playwright

    from studio.config import RunConfig
    from studio.runs.folder import RunDir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--windows", type=int, default=6, help="alternating windows, starting with the page open")
    parser.add_argument("--variants", nargs="+", help="instead of alternating: one window each, 'open', 'closed' or "
                                                       f"'open+STYLE' with STYLE one of {', '.join(STYLES)}")
    parser.add_argument("--window-s", type=float, default=90.0)
    parser.add_argument("--port", type=int, default=7898)
    parser.add_argument("--poll-s", type=float, help="the Train tab's poll while a run trains (default: the app's)")
    parser.add_argument("--chart-s", type=float, help="each of the Train tab's charts at most this often")
    parser.add_argument("--dtype", help="the run's Number format (model.dtype), e.g. float32: the compute of a CPU "
                                        "without AVX-512, on one that has it")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="page-cost-"))
    runs = work / "runs"
    plan = args.variants or ["open" if i % 2 == 0 else "closed" for i in range(args.windows)]
    minutes = (len(plan) * args.window_s + 240) / 60  # the run outlasts every window
    config = RunConfig().replace({"data": {"path": str(Path(args.data).resolve())},
                                  "train": {"time_budget_minutes": round(minutes, 1)},
                                  **({"model": {"dtype": args.dtype}} if args.dtype else {})})
    config.save(work / "config.json")
    launch = ["launch.py", "--port", str(args.port), "--runs-dir", str(runs), "--config", str(work / "config.json")]
    paces = {"POLL_SECONDS": args.poll_s,
             "CHART_SECONDS": args.chart_s and f"dict.fromkeys(t.CHART_SECONDS, {args.chart_s})"}
    if any(paces.values()):  # the app as it is, with another pace for the Train tab's poll or its charts
        settings = "; ".join(f"t.{name} = {value}" for name, value in paces.items() if value)
        launch = ["-c", f"import runpy, sys; import studio.ui.tabs.train as t; {settings}; "
                        f"sys.argv = {launch!r}; runpy.run_path('launch.py', run_name='__main__')"]
    app = subprocess.Popen([sys.executable, *launch], cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    import psutil

    server = psutil.Process(app.pid)
    windows = []
    try:
        wait_until_up(args.port, app)
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_watched_page(browser, args.port)
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
            for variant in plan:
                open_now = variant.startswith("open")
                if page is not None:  # a fresh page per window: no style carried over
                    page.close()
                    page = None
                if open_now:
                    page = open_watched_page(browser, args.port)
                    if "+" in variant:
                        page.add_style_tag(content=STYLES[variant.split("+", 1)[1]])
                t0 = time.time() - first_wall + first_elapsed
                c0, s0, r0 = cpu_seconds(chromium_processes), cpu_seconds(lambda: [server]), renderer_seconds(page)
                k0 = cpu_seconds(lambda: server.children(recursive=True))
                time.sleep(args.window_s)
                t1 = time.time() - first_wall + first_elapsed
                c1, s1, r1 = cpu_seconds(chromium_processes), cpu_seconds(lambda: [server]), renderer_seconds(page)
                k1 = cpu_seconds(lambda: server.children(recursive=True))
                windows.append({"page": variant, "t0": t0, "t1": t1,
                                "chromium_cpu_s": round(used(c0, c1), 1), "server_cpu_s": round(used(s0, s1), 1),
                                "training_process_cpu_s": round(used(k0, k1), 1),  # a run the app trains in a child
                                "page_main_thread_s": {k: round(r1[k] - r0[k], 2) for k in r1}})
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
    for side in dict.fromkeys(plan):
        mine = [w for w in windows if w["page"] == side]
        summary[side] = {"tokens_per_s": round(statistics.mean(w["tokens_per_s"] for w in mine), 1),
                         "server_cpu_s": round(statistics.mean(w["server_cpu_s"] for w in mine), 1),
                         "training_process_cpu_s": round(statistics.mean(w["training_process_cpu_s"] for w in mine), 1),
                         "chromium_share_of_cores": round(sum(w["chromium_cpu_s"] for w in mine) /
                                                          (args.window_s * len(mine) * (os.cpu_count() or 1)), 3)}
    ratio = summary["open"]["tokens_per_s"] / summary["closed"]["tokens_per_s"] if "closed" in summary else None
    result = {"device": device(), "data": Path(args.data).name, "window_s": args.window_s, "dtype": args.dtype,
              "poll_s": args.poll_s or "the app's",
              "windows": windows, "summary": summary, "open_over_closed_tokens_per_s": ratio and round(ratio, 3),
              "wall_s": round(wall, 1)}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
