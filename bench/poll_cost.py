"""What the Train tab's polls cost the browser while a run trains, without the training: the web app in this process
(the page as it is served, with its repaired front end), a run that only pretends (a step every --step-s seconds,
a validation every tenth step, a log line a step, records as a CPU run writes them), and Debian's chromium on the
Train tab. Per window of --window-s: chromium's CPU seconds (all its processes), its page's main-thread task and
script time (DevTools' counters), and the app's own CPU, each a minute. No training shares the machine, so a change
to the tab shows in a few minutes where a whole run swings by more than it (docs/benchmarks.md, "The browser and the
CLI").

    python bench/poll_cost.py --windows 3 --window-s 60 --json docs/device-results/poll-cost-chromium.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from browser_vs_cli import chromium_processes, launch_chromium  # noqa: E402
from page_cost import cpu_seconds, open_watched_page, renderer_seconds, used  # noqa: E402


class PretendRun:
    """A run the Train tab polls (studio.door.training.Status), advancing with the clock: its snapshot built by the
    jobs' own build_snapshot from a metrics stream that gains a CPU run's records step by step."""

    def __init__(self, step_s: float, run_dir: Path, total_steps: int = 140):
        from studio.runs.folder import RunDir
        from studio.runs.jobs import LiveState
        from studio.runs.stream import MetricsStream

        self.step_s, self.total, self.logged = step_s, total_steps, 0
        self.run, self.stream = RunDir(run_dir), MetricsStream()
        self.live = LiveState(state="running", phase="training", started=time.time(), total_steps=total_steps,
                              backend={"name": "transformers", "device": "cpu"}, rows_per_step=16, batch=(16, 1),
                              memory_estimate={"cpu_ram": {"peak_gb": 7.06}}, time_budget_s=420.0)

    def step(self) -> int:
        return min(self.total, int((time.time() - self.live.started) / self.step_s))

    def status(self, log_lines: int = 60):
        from studio.door.training import Status
        from studio.runs.jobs import build_snapshot

        for i in range(self.logged + 1, self.step() + 1):  # the steps taken since the last poll
            self.stream.append({"kind": "train", "step": i, "loss": 2.0 / (1 + 0.05 * i), "learning_rate": 1e-4,
                                "tokens_per_s": 600.0, "eta_s": (self.total - i) * self.step_s,
                                "rss_gb": 5.8 + 0.001 * i, "rss_peak_gb": 6.0, "device": "cpu", "mem_total_gb": 23.4,
                                "max_steps": self.total})
            if i % 10 == 0:
                self.stream.append({"kind": "eval", "step": i, "macro_f1": 0.5 + 0.002 * i, "minority_recall": 0.4})
            self.logged = i
        step = self.logged
        log = "\n".join(f"step {i}: loss {2.0 / (1 + 0.05 * i):.4f}" for i in range(max(1, step - log_lines), step + 1))
        return Status(build_snapshot(self.run, self.stream, self.live), self.stream.records(), log, False)


def start_app(port: int, runs_dir: str):
    """The web app as launch.py starts it, in this process (so the pretend run is the one it polls)."""
    import launch

    from studio.ui.app import launch as launch_app

    return launch_app(launch.parse_args(["--port", str(port), "--runs-dir", runs_dir]), block=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--step-s", type=float, default=3.0, help="seconds a pretend step takes")
    parser.add_argument("--no-run", action="store_true", help="the Train tab with nothing training")
    parser.add_argument("--port", type=int, default=7912)
    parser.add_argument("--label", default="", help="what this measurement is of (kept in the JSON)")
    parser.add_argument("--json")
    args = parser.parse_args()

    import psutil
    from playwright.sync_api import sync_playwright

    from studio.door import training

    work = Path(tempfile.mkdtemp(prefix="poll-cost-"))
    run = PretendRun(args.step_s, work / "pretend-run")
    if not args.no_run:
        training.status = run.status  # the Train tab's poll reads it by module attribute
    demo = start_app(args.port, str(work / "runs"))
    me = psutil.Process(os.getpid())
    windows = []
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_watched_page(browser, args.port)
            time.sleep(15)  # the page's first draws and the app's first answers are not the steady cost
            for _ in range(args.windows):
                chromium = cpu_seconds(chromium_processes)
                app, main_thread = me.cpu_times(), renderer_seconds(page)
                time.sleep(args.window_s)
                chromium_after = cpu_seconds(chromium_processes)
                app_after, main_after = me.cpu_times(), renderer_seconds(page)
                per_min = 60.0 / args.window_s
                windows.append({
                    "chromium_cpu_s_per_min": round(used(chromium, chromium_after) * per_min, 2),
                    "main_thread_task_s_per_min": round(
                        (main_after["TaskDuration"] - main_thread["TaskDuration"]) * per_min, 2),
                    "main_thread_script_s_per_min": round(
                        (main_after["ScriptDuration"] - main_thread["ScriptDuration"]) * per_min, 2),
                    "app_cpu_s_per_min": round(
                        (app_after.user + app_after.system - app.user - app.system) * per_min, 2),
                    "step_at_end": run.step()})
                print(json.dumps(windows[-1]), flush=True)
            browser.close()
    finally:
        demo.close()
    result = {"device": "Debian's chromium, headless; the web app in the benchmark's process", "label": args.label,
              "run": "none" if args.no_run else f"pretend, a step every {args.step_s} s", "windows": windows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
