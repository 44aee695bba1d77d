"""Does the browser get what the engine makes? The defaults on one dataset, trained twice on this machine in one
benchmark run: from the CLI (`python -m studio train --data F`), and from the web app in Debian's chromium with the
Train tab open for the whole run (Start clicked once the opened page has settled, the page left polling). Both runs
are then evaluated the same way (`python -m studio eval RUN --json`). Reported side by side: steps, tokens trained,
median tokens/s, the time budget used, Val A macro-F1 (the fine-tuned LLM and the classifier in use), and the
browser's ratio to the CLI.

    python bench/browser_vs_cli.py --data ../shared/datasets/financial_phrasebank.csv --json browser.json
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
CHROMIUM = "/usr/bin/chromium"


def speed(run_dir: Path) -> dict:
    """Steps, tokens and the median tokens/s of a run (what the paired runs compare)."""
    from studio.runs.folder import RunDir

    train = [r for r in RunDir(run_dir).metrics() if r.get("kind") == "train"]
    return {"steps": train[-1]["step"], "tokens": train[-1]["tokens_seen"], "train_s": train[-1]["elapsed_s"],
            "median_tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in train[1:] or train), 1)}


def facts(run_dir: Path, eval_s: float) -> dict:
    from studio.runs.folder import RunDir

    run = RunDir(run_dir)
    report = json.loads((run.path / "eval.json").read_text())
    budget = (run.record().get("resolved") or {}).get("time_budget_minutes")
    candidates = report.get("candidates") or {}
    return {"run": run.name, **speed(run.path), "budget_s": 60 * budget if budget else None,
            "epochs": [r for r in run.metrics() if r.get("kind") == "train"][-1]["epoch"],
            "llm_macro_f1": (candidates.get("llm") or {}).get("val_a", {}).get("macro_f1"),
            "chosen": (report.get("chosen") or {}).get("name"),
            "chosen_macro_f1": (report.get("chosen") or {}).get("val_a", {}).get("macro_f1"),
            "classic_macro_f1": (candidates.get("classic") or {}).get("val_a", {}).get("macro_f1"),
            "eval_s": round(eval_s, 1), **memory(run.path)}


def memory(run_dir: Path) -> dict:
    """The training process's peak RSS (memory.json's measurement) beside the RAM estimate the Train tab shows."""
    path = run_dir / "memory.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    estimate = record.get("estimate") or {}
    ram = estimate.get("cpu_ram") or {}
    return {"peak_rss_gb": (record.get("measured") or {}).get("peak_rss_gb"), "ram_estimate_gb": ram.get("peak_gb"),
            "held_at_load_gb": ram.get("held_at_load_gb"), "compute": ram.get("compute"),
            "tokens_per_micro_batch": estimate.get("tokens_per_micro_batch")}


def device() -> str:
    from studio.machine import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores"


def evaluate(run_dir: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "studio", "eval", str(run_dir), "--json"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def from_cli(data: Path, runs: Path, budget_minutes: float | None = None) -> Path:
    budget = ["--time-budget-minutes", str(budget_minutes)] if budget_minutes else []
    subprocess.run([sys.executable, "-m", "studio", "train", "--data", str(data), "--runs-dir", str(runs), "--name",
                    "cli", "--quiet", *budget], cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return runs / "cli"


def launch_chromium(playwright):
    """Debian's chromium, headless, as the browser tests launch it."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def chromium_processes():
    import psutil

    return [p for p in psutil.process_iter(["name"]) if "chrom" in (p.info["name"] or "")]


def open_train_tab(browser, port: int):
    """A page of the web app at 1400 px, on the Train tab."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"http://127.0.0.1:{port}/")
    page.get_by_role("tab", name="4 · Train").click()
    return page


def wait_until_up(port: int, app: subprocess.Popen, timeout_s: float = 120.0) -> None:
    """Until the web app answers (a fixed sleep is too short on a slow machine, too long on a fast one)."""
    import httpx

    end = time.time() + timeout_s
    while time.time() < end and app.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the web app did not answer on port {port}")


def settle(pid: int, quiet_s: float = 0.2, window_s: float = 2.0, timeout_s: float = 120.0) -> float:
    """Wait until the web app's process uses less than ``quiet_s`` CPU seconds in ``window_s``: a page that has just
    opened checks the data and plans the run in the app (tokenizer, tokens per row), which a person's Start click
    comes after; clicked at once, the run's first phases and its step timing shared the CPU with them. Returns the
    seconds waited."""
    import psutil

    app = psutil.Process(pid)
    start = time.time()
    while time.time() < start + timeout_s:
        before = sum(app.cpu_times()[:2])
        time.sleep(window_s)
        if sum(app.cpu_times()[:2]) - before < quiet_s:
            break
    return round(time.time() - start, 1)


class CpuShare:
    """CPU seconds used while the run trains, split by who used them: chromium (every process of the browser) and the
    web app (its process, which answers the page's polls, with the child process that trains on a CPU). Sampled
    every few seconds, so a process that ends between samples keeps its last reading."""

    def __init__(self, app_pid: int):
        import threading

        self.app_pid, self.first, self.last = app_pid, {}, {}
        self.started = time.time()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _groups(self) -> dict:
        import psutil

        app = psutil.Process(self.app_pid)
        groups = {("server", p.pid): p for p in [app, *app.children(recursive=True)]}
        groups.update({("chromium", p.pid): p for p in chromium_processes()})
        return groups

    def _loop(self) -> None:
        import psutil

        while not self.stop.wait(3.0):
            for key, proc in self._groups().items():
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                self.first.setdefault(key, t.user + t.system)
                self.last[key] = t.user + t.system

    def report(self) -> dict:
        self.stop.set()
        self.thread.join()
        wall = time.time() - self.started
        out = {"wall_s": round(wall, 1)}
        for group in ("chromium", "server"):
            seconds = sum(self.last[k] - self.first[k] for k in self.last if k[0] == group)
            out[f"{group}_cpu_s"] = round(seconds, 1)
            out[f"{group}_share_of_cores"] = round(seconds / (wall * (os.cpu_count() or 1)), 3)
        return out


def from_browser(data: Path, runs: Path, port: int, shots: Path, cpu: dict | None = None,
                 budget_minutes: float | None = None) -> Path:
    """The web app with the defaults and the data file; Start clicked in chromium, the Train tab open until the run
    ends; ``cpu`` gets who used the CPU while it trained (CpuShare)."""
    from playwright.sync_api import sync_playwright

    from studio.config import RunConfig

    config = RunConfig().replace({"data": {"path": str(data)}})
    if budget_minutes:
        config = config.replace({"train": {"time_budget_minutes": budget_minutes}})
    config_path = runs.parent / "browser-config.json"
    config.save(config_path)
    app = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), "--runs-dir", str(runs), "--config",
                            str(config_path)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        wait_until_up(port, app)
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = open_train_tab(browser, port)
            settled_s = settle(app.pid)  # the page's own start (its data check and plan) done, as a person's Start
            page.click("#start-training")
            page.get_by_text("started in").wait_for(timeout=120000)
            share = CpuShare(app.pid)
            status = page.locator("#train-status")
            status.get_by_text(": finished", exact=False).wait_for(timeout=3600_000)
            if cpu is not None:
                cpu.update(share.report(), settled_s=settled_s)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / "browser-vs-cli-train.png"), full_page=True)
            browser.close()
    finally:
        app.terminate()
        app.wait(60)
    return max((p for p in runs.iterdir() if (p / "run.json").exists()), key=lambda p: p.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, default=7899)
    parser.add_argument("--json")
    parser.add_argument("--browser-only", action="store_true", help="skip the CLI run (to split the page's cost)")
    parser.add_argument("--cli-first", action="store_true", help="the CLI's run first (the machine drifts: run both "
                                                                  "orders)")
    parser.add_argument("--pairs", type=int, help="instead: this many pairs of shorter runs, CLI and browser in "
                                                   "alternating order (the machine's speed drifts between runs)")
    parser.add_argument("--budget-minutes", type=float, default=2.0, help="each paired run's time budget")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="browser-vs-cli-"))
    shots = REPO / "test-artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    data = Path(args.data).resolve()
    if args.pairs:
        return paired(data, work, args, shots)
    cpu: dict = {}
    if args.cli_first:
        cli_run = from_cli(data, work / "cli-runs")
        cli = facts(cli_run, evaluate(cli_run))
    browser_run = from_browser(data, work / "browser-runs", args.port, shots, cpu)
    browser = {**facts(browser_run, evaluate(browser_run)), "cpu": cpu}
    if args.browser_only:
        print(json.dumps({"device": device(), "data": data.name, "browser": browser}))
        return
    if not args.cli_first:
        cli_run = from_cli(data, work / "cli-runs")
        cli = facts(cli_run, evaluate(cli_run))
    result = {"device": device(), "data": data.name, "order": "CLI first" if args.cli_first
              else "browser first", "cli": cli, "browser": browser,
              "ratio_tokens_per_s": round(browser["median_tokens_per_s"] / cli["median_tokens_per_s"], 3),
              "ratio_tokens": round(browser["tokens"] / cli["tokens"], 3)}
    print("| | CLI | browser (Train tab open) | browser / CLI |\n|---|---|---|---|")
    print(f"CPU while the browser's run trained: {cpu}")
    for key in ("steps", "tokens", "median_tokens_per_s", "train_s", "budget_s", "epochs", "llm_macro_f1",
                "chosen_macro_f1", "classic_macro_f1"):
        a, b = cli[key], browser[key]
        ratio = f"{b / a:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else ""
        print(f"| {key} | {a} | {b} | {ratio} |")
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


def paired(data: Path, work: Path, args, shots: Path) -> None:
    """Pairs of short runs, the CLI's and the browser's, in the order CLI-browser, browser-CLI, ... (ABBA): the
    machine's speed drifts by more than the page costs (the CLI alone did 390-550 tokens/s from one hour to the
    next), so each pair compares runs minutes apart, and the order's effect cancels over the pairs."""
    pairs = []
    for i in range(args.pairs):
        cpu: dict = {}
        sides = {}
        for side in (("cli", "browser") if i % 2 == 0 else ("browser", "cli")):
            runs = work / f"pair-{i}-{side}"
            run = (from_cli(data, runs, args.budget_minutes) if side == "cli" else
                   from_browser(data, runs, args.port, shots, cpu, args.budget_minutes))
            sides[side] = {**speed(run), **memory(run)}
        pair = {**sides, "first": "CLI" if i % 2 == 0 else "browser", "cpu": cpu,
                "ratio_tokens_per_s": round(sides["browser"]["median_tokens_per_s"] /
                                            sides["cli"]["median_tokens_per_s"], 3)}
        pairs.append(pair)
        print(json.dumps(pair), flush=True)
    ratios = [p["ratio_tokens_per_s"] for p in pairs]
    result = {"device": device(), "data": data.name, "budget_minutes": args.budget_minutes,
              "pairs": pairs, "ratios": ratios, "median_ratio": round(statistics.median(ratios), 3),
              "mean_ratio": round(statistics.mean(ratios), 3)}
    print(json.dumps({k: v for k, v in result.items() if k != "pairs"}))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
