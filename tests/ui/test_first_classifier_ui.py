"""The first classifier in a real browser (#44): Start, and while the LLM trains the Train tab says a classifier is
ready, Evaluate shows the classic model's evaluation (its table, its matrices) and the Playground answers with it."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import launch_chromium, serve, toy_config, toy_rows

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.mark.browser
def test_the_classic_model_answers_while_the_llm_trains(tiny_model_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    from studio.ui.app import build_app

    data = tmp_path / "forum_posts.csv"
    pd.DataFrame(toy_rows(400, minority_every=4, seed=21), columns=["text", "label"]).to_csv(data, index=False)
    runs = tmp_path / "runs"
    # long enough to be training all along the walk-through; Stop ends it
    config = toy_config(tiny_model_dir, data, max_steps=100000).replace({"name": "first-walk"})
    demo = build_app(str(runs), 50, config)
    url = serve(demo)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="4 · Train").click()
            page.click("#start-training")
            status = page.locator("#train-status")
            status.get_by_text("First classifier ready", exact=False).wait_for(timeout=120000)
            assert "classic model" in status.inner_text()
            page.screenshot(path=str(SHOTS / "first-1-train.png"), full_page=True)

            page.get_by_role("tab", name="5 · Evaluate").click()
            page.wait_for_timeout(1000)
            page.click("#evaluate")
            summary = page.locator("#eval-summary")
            summary.get_by_text("this run's first classifier", exact=False).first.wait_for(timeout=60000)
            page.locator("#cm-val-a .heatmaplayer").wait_for(timeout=30000)
            text = summary.inner_text()
            assert "★ classic" in text and "majority" in text and "The fine-tuned LLM is training" in text
            assert "Classic model (TF-IDF)" in page.locator("#cm-val-a").text_content()
            assert not page.locator("#eval-use").is_visible()  # one candidate: nothing to pick among yet
            page.screenshot(path=str(SHOTS / "first-2-evaluate.png"), full_page=True)

            page.get_by_role("tab", name="6 · Playground").click()
            page.wait_for_timeout(1000)
            page.fill("#play-text textarea", "rules question about links in my signature")
            page.click("#classify")
            verdict = page.locator("#play-verdict")
            verdict.get_by_text("still training", exact=False).wait_for(timeout=60000)
            assert "By the classic model, the classifier in use" in verdict.inner_text()
            page.wait_for_timeout(800)  # the charts settle
            page.screenshot(path=str(SHOTS / "first-3-playground.png"), full_page=True)

            page.get_by_role("tab", name="4 · Train").click()
            assert "first-walk" in status.inner_text() and "running" in status.inner_text()  # all along
            page.click("#stop-training")
            status.get_by_text("stopped", exact=False).first.wait_for(timeout=120000)
            browser.close()
    finally:
        demo.close()
