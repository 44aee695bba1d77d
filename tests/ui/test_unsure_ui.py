"""'Unsure' in a real browser (#41): the Data tab's setting and its summary line, the Evaluate tab's "share
answered" rows and the matrix's 'unsure' column, and the Playground's answer "unsure" with why."""

from pathlib import Path

import pytest
from conftest import doubtful_rows, evaluate_in_page, launch_chromium, serve, toy_config

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.mark.browser
def test_unsure_through_data_evaluate_and_playground(tiny_model_dir, tmp_path):
    import pandas as pd
    from playwright.sync_api import sync_playwright

    from studio.classifier.engine import RunClassifier
    from studio.runs.folder import RunDir
    from studio.train.worker import start_training
    from studio.ui.app import build_app

    data = tmp_path / "topics.csv"
    pd.DataFrame(doubtful_rows(80, 0), columns=["text", "label"]).to_csv(data, index=False)
    runs = tmp_path / "runs"
    config = toy_config(tiny_model_dir, data, max_steps=12).replace({"name": "doubtful",
                                                                     "data": {"rubric": "", "unsure": 0.98}})
    job = start_training(config, runs)
    assert job.wait(300) and job.state == "finished", job.error
    demo = build_app(str(runs), 50, config)
    url = serve(demo)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.locator("#data-upload input[type=file]").set_input_files(str(data))
            page.get_by_text("(uploaded)", exact=False).first.wait_for(timeout=30000)
            page.get_by_text("Split and balancing", exact=False).first.click()  # the settings' accordion
            setting = page.get_by_label("Answer 'unsure' unless right this often")
            setting.fill("0.95")
            setting.press("Tab")
            page.click("#check-data")
            summary = page.locator("#data-summary")
            summary.get_by_text("'unsure' allowed", exact=False).wait_for(timeout=60000)
            assert "kept right 95% of the time" in summary.inner_text()
            page.screenshot(path=str(SHOTS / "unsure-1-data.png"), full_page=True)

            evaluate_in_page(page)
            text = page.locator("#eval-summary").inner_text()
            assert "share answered" in text and "accuracy of the answered" in text
            assert "'Unsure' when the answer's probability is under" in text
            columns = page.locator("#cm-val-a").text_content()
            assert "unsure" in columns  # the matrix's own column for the texts not answered
            page.screenshot(path=str(SHOTS / "unsure-2-evaluate.png"), full_page=True)

            classifier = RunClassifier.of_run(RunDir.open("doubtful", runs))
            doubtful = [t for t, _ in doubtful_rows(20, 1)]
            frame = classifier.predict_frame(doubtful)
            text = doubtful[int((frame["predicted_label"] == "unsure").to_numpy().argmax())]
            page.get_by_role("tab", name="6 · Playground").click()
            page.wait_for_timeout(1000)
            page.fill("#play-text textarea", text)
            page.click("#classify")
            page.get_by_text("Before training the same model said").wait_for(timeout=60000)
            verdict = page.locator("#play-verdict").inner_text()
            assert verdict.startswith("unsure") and "cut fitted on held-out rows" in verdict, verdict
            page.screenshot(path=str(SHOTS / "unsure-3-playground.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
