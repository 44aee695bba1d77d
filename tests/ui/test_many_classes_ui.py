"""A 150-class file through the Data and Evaluate tabs in a real browser (#41): the summary counts the classes
instead of listing them, the codes table searches, the counts chart draws one bar per class, and the evaluation shows
the most confused pairs and the worst classes' matrices, the full matrix on demand."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import evaluate_in_page, toy_config, trained_run_in_browser

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"
WORDS = ["alarm", "balance", "bill", "book", "card", "change", "cook", "credit", "date", "flight", "hotel", "insurance",
         "language", "meeting", "order", "payday", "pto", "restaurant", "reminder", "todo", "taxes", "travel", "visa",
         "weather", "volume"]


def intents() -> list[str]:
    pairs = [f"{a}_{b}" for a in WORDS for b in WORDS if a < b]
    return pairs[:150] + ["oos"]


@pytest.fixture(scope="module")
def many_file(tmp_path_factory):
    rows = [(f"{lb.replace('_', ' ')} please {i}", lb) for lb in intents() for i in range(5)]
    path = tmp_path_factory.mktemp("many-ui") / "intents.csv"
    pd.DataFrame(rows, columns=["text", "intent"]).to_csv(path, index=False)
    return path


@pytest.mark.browser
def test_150_classes_through_data_and_evaluate(tiny_model_dir, many_file, tmp_path):
    config = toy_config(tiny_model_dir, many_file, max_steps=20).replace({"name": "intents", "data": {"rubric": ""}})
    SHOTS.mkdir(parents=True, exist_ok=True)
    with trained_run_in_browser(config, tmp_path / "runs") as page:
        page.locator("#data-upload input[type=file]").set_input_files(str(many_file))
        page.get_by_text("(uploaded)", exact=False).first.wait_for(timeout=30000)
        assert not page.locator("#data-error").inner_text().strip()  # 151 classes: no flag, no refusal
        page.click("#check-data")
        summary = page.locator("#data-summary")
        summary.get_by_text("151 classes", exact=False).wait_for(timeout=120000)
        assert "out-of-scope class oos" in summary.inner_text().replace("*", "")
        assert "book_card" not in summary.inner_text()  # counted, not listed one by one
        codes = page.locator("#codes")
        codes.get_by_text("alarm_balance", exact=True).first.wait_for(timeout=30000)
        codes.get_by_placeholder("Search", exact=False).fill("change_hotel")  # 151 rows: find one by name
        page.wait_for_function("!document.querySelector('#codes').innerText.includes('alarm_balance')",
                               timeout=30000)
        assert "change_hotel" in codes.inner_text()
        page.get_by_text("Rows per class (151 classes, the rarest first)").wait_for(timeout=30000)
        page.screenshot(path=str(SHOTS / "many-1-data.png"), full_page=True)

        evaluate_in_page(page, timeout=240000)
        pairs = page.locator("#eval-pairs")
        assert pairs.is_visible() and "predicted" in pairs.inner_text()
        title = page.locator("#cm-val-a .gtitle").text_content()
        assert "of 151 classes" in title, title
        text = page.locator("#eval-summary").inner_text()
        assert "in-scope accuracy" in text and "out-of-scope recall" in text
        page.screenshot(path=str(SHOTS / "many-2-evaluate.png"), full_page=True)
        page.locator("#eval-classes").get_by_text("All classes", exact=True).click()
        page.wait_for_function("!document.querySelector('#cm-val-a .gtitle').textContent.includes(' of 151')",
                               timeout=30000)
        page.screenshot(path=str(SHOTS / "many-3-all-classes.png"), full_page=True)
