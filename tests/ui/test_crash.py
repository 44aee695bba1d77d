"""A crash costs at most a checkpoint interval, in the browser too: the web app is killed (kill -9) while a budgeted
run trains; after a restart (without the settings it was started with) the Data tab shows the interrupted run's own
data, the Train tab the interrupted run with its last step and a Resume button, and Resume continues from the last
checkpoint with the time budget it had left."""

import json
import signal

import pytest
from conftest import free_port, launch_chromium, start_web_app, toy_config, wait_for

from studio.runs.folder import CHECKPOINT_DONE, RunDir, list_runs


@pytest.mark.browser
def test_a_killed_app_shows_the_interrupted_run_and_resumes_it(tiny_model_dir, toy_csv, tmp_path):
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    config = toy_config(tiny_model_dir, toy_csv, max_steps=-1, num_train_epochs=10_000, eval_steps=0,
                        time_budget_minutes=0.5, early_stopping_patience=0, checkpoint_minutes=0.05)
    config.save(tmp_path / "run.json")
    runs = tmp_path / "runs"
    port = free_port()
    app = start_web_app(runs, port, tmp_path / "run.json")
    try:
        Client(f"http://127.0.0.1:{port}/", verbose=False).predict(api_name="/start_training")
        assert wait_for(lambda: any(runs.glob("*/run.json")), 60)
        run = RunDir(next(runs.glob("*/run.json")).parent)
        assert wait_for(lambda: run.last_checkpoint() is not None and any(
            r.get("kind") == "train" and r["elapsed_s"] > 8 for r in run.metrics()), timeout=180)
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait()
    # The run trains in a child process on this CPU: it ends with the app, within a second
    assert wait_for(lambda: list_runs(runs)[0]["state"] == "interrupted", 10), run.status()
    last = max(r["step"] for r in run.metrics() if r.get("kind") == "train")
    checkpoint = int(run.last_checkpoint().name.rsplit("-", 1)[-1])
    assert json.loads((run.last_checkpoint() / CHECKPOINT_DONE).read_text())["budget_used_s"] > 0
    listed = list_runs(runs)[0]  # the Runs tab's row: the last logged step, not "0/?"
    assert listed["state"] == "interrupted" and listed["step"] == last and listed["max_steps"]

    app = start_web_app(runs, port)  # a plain restart: the page starts from the interrupted run's settings
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text(f"Using {toy_csv.name}.", exact=True).wait_for(timeout=30000)  # not the sample
            page.get_by_role("tab", name="4 · Train").click()
            status = page.locator("#train-status")
            status.get_by_text("was interrupted at", exact=False).wait_for(timeout=30000)
            words = status.inner_text()
            assert f"step {last}/" in words and f"last checkpoint is step {checkpoint}" in words
            resume = page.locator("#resume-training")
            assert f"from step {checkpoint}" in resume.inner_text()
            resume.click()
            status.get_by_text(f"{run.name}: finished", exact=False).wait_for(timeout=180000)
            browser.close()
    finally:
        app.terminate()
        app.wait(30)
    log = run.log_path.read_text()
    assert f"resuming from checkpoint-{checkpoint}" in log and "of the 0.5-minute budget left" in log
    assert run.status()["state"] == "finished" and run.status()["step"] > last
