"""Is the UI responsive while a run trains? On this machine's CPU, with the tiny test model training in the app's
own process (the worker thread competes with the web server for the cores):

- page load: GET / (the HTML), and a full load in Debian's chromium until the Train tab shows the live run;
- chart refresh: the /training_status call the Train tab's timer makes every 2 seconds while a run trains (the
  status line, and the loss, memory and validation charts and the log when they changed), through gradio_client.

Each is repeated and the median and worst are reported, with no training as the baseline.

    python bench/ui_latency.py --repeats 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CHROMIUM = "/usr/bin/chromium"


def timed(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "n": repeats}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gradio_client import Client

    from studio.config import RunConfig
    from studio.models.tiny import build_tiny_model
    from studio.ui.app import build_app
    from studio.runs.jobs import current as current_job

    tmp = Path(tempfile.mkdtemp())
    model = build_tiny_model(tmp / "tiny")
    config = RunConfig().replace({
        "model": {"name": str(model), "max_seq_length": 256},
        "lora": {"use_gradient_checkpointing": "false", "r": 8},
        "train": {"max_steps": 100_000, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                  "save_steps": 100_000}})
    demo = build_app(str(tmp / "runs"), 50, config)
    demo.queue()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    client = Client(url, verbose=False)

    def page():
        urllib.request.urlopen(url, timeout=30).read()

    def status():
        client.predict(api_name="/training_status")

    def browser_load(page_obj):
        def load():
            page_obj.goto(url)
            page_obj.get_by_role("tab", name="3 · Train").click()
            page_obj.locator("#train-status").get_by_text("running", exact=False).or_(
                page_obj.locator("#train-status").get_by_text("No run yet", exact=False)).first.wait_for(
                timeout=30000)
        return load

    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        tab = browser.new_page()
        for phase in ("idle", "training"):
            if phase == "training":
                client.predict(api_name="/start_training")
                while not (current_job() and current_job().stream.records("train")):
                    time.sleep(0.2)
            results[phase] = {"GET /": timed(page, args.repeats),
                              "/training_status (chart refresh)": timed(status, args.repeats),
                              "browser load to the Train tab": timed(browser_load(tab), max(3, args.repeats // 3))}
            print(phase, json.dumps(results[phase]), flush=True)
        job = current_job()
        results["steps_trained_meanwhile"] = job.snapshot()["step"]
        job.stop()
        job.wait(60)
        browser.close()
    demo.close()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
