"""A labelled test file in a real browser (#44 item 8): scored once under its own name (no Val B drawn from it, no
"cross-fitted" figures), and batch predict of a labelled file gives its figures from the same predictions."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import toy_config, toy_rows, trained_run_in_browser

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.mark.browser
def test_a_labelled_test_file_is_scored_once_under_its_own_name(tiny_model_dir, tmp_path):
    data = tmp_path / "posts.csv"
    pd.DataFrame(toy_rows(160, minority_every=4, seed=5), columns=["text", "label"]).to_csv(data, index=False)
    test = tmp_path / "holdout.csv"
    pd.DataFrame(toy_rows(40, minority_every=4, seed=77), columns=["text", "label"]).to_csv(test, index=False)
    runs = tmp_path / "runs"
    config = toy_config(tiny_model_dir, data, max_steps=12).replace({"name": "with-a-test-file"})
    SHOTS.mkdir(parents=True, exist_ok=True)
    with trained_run_in_browser(config, runs) as page:
        page.get_by_role("tab", name="5 · Evaluate").click()
        page.wait_for_timeout(1000)
        page.get_by_text("Score a labelled test file instead", exact=False).click()
        page.locator("#eval-data input[type=file]").set_input_files(str(test))
        page.wait_for_timeout(1500)
        page.click("#evaluate")
        summary = page.locator("#eval-summary")
        try:
            summary.get_by_text("holdout.csv (test set)", exact=False).first.wait_for(timeout=120000)
        except Exception:
            page.screenshot(path=str(SHOTS / "test-file-failure.png"), full_page=True)
            raise
        text = summary.inner_text()
        assert "40 holdout.csv rows" in text and "Val B" not in text and "cross-fitted" not in text, text
        assert "holdout.csv (test set)" in page.locator("#cm-val-a").text_content()
        assert "a test file is scored once" in page.locator("#cm-val-b").text_content()
        page.screenshot(path=str(SHOTS / "test-file-1-evaluate.png"), full_page=True)

        page.get_by_text("Batch predict a file", exact=False).click()
        page.locator("#predict-in input[type=file]").set_input_files(str(test))
        status = page.locator("#predict-status")
        status.get_by_text("so it is a test set", exact=False).wait_for(timeout=120000)
        assert "on its 40 rows the classifier in use scores accuracy" in status.inner_text()
        page.screenshot(path=str(SHOTS / "test-file-2-predict.png"), full_page=True)
