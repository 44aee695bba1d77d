"""'Unsure' in a real browser (#41): the Data tab's setting and its summary line, the Evaluate tab's "share
answered" rows and the matrix's 'unsure' column, and the Playground's answer "unsure" with why."""

from pathlib import Path

import pytest
from conftest import doubtful_rows, evaluate_in_page, toy_config, trained_run_in_browser

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.mark.browser
def test_unsure_through_data_evaluate_and_playground(tiny_model_dir, tmp_path):
    import pandas as pd

    from studio.classifier.engine import RunClassifier
    from studio.runs.folder import RunDir

    data = tmp_path / "topics.csv"
    pd.DataFrame(doubtful_rows(80, 0), columns=["text", "label"]).to_csv(data, index=False)
    runs = tmp_path / "runs"
    config = toy_config(tiny_model_dir, data, max_steps=12).replace({"name": "doubtful",
                                                                     "data": {"rubric": "", "unsure": 0.98}})
    SHOTS.mkdir(parents=True, exist_ok=True)
    with trained_run_in_browser(config, runs) as page:
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
