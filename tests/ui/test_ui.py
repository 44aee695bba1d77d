"""The web UI: wiring through gradio_client against a launched app, and the whole flow in a real browser (Debian's
chromium driven by playwright) with a screenshot of every tab in test-artifacts/screenshots/."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import CHROMIUM, REPO, evaluate_in_page, launch_chromium, serve, toy_rows

from studio.config import RunConfig

SHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    rows = toy_rows(120, minority_every=4, seed=3)
    for i in (1, 2, 3):  # three 'project …' posts labelled as rules questions: the Labels tab should find them
        rows[i] = (rows[i][0], "Rules Question")
    path = tmp_path_factory.mktemp("ui-data") / "forum_posts.jsonl"
    pd.DataFrame(rows, columns=["post", "category"]).to_json(path, orient="records", lines=True)
    return path


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    from studio.ui.app import build_app

    config = RunConfig().replace({
        "model": {"name": str(tiny_model_dir), "max_seq_length": 256},
        "lora": {"use_gradient_checkpointing": "false", "r": 8, "lora_alpha": 16},
        "train": {"max_steps": 30, "learning_rate": 5e-3, "warmup_steps": 2, "per_device_train_batch_size": 8,
                  "gradient_accumulation_steps": 1}})
    runs = tmp_path_factory.mktemp("ui-runs")
    demo = build_app(str(runs), 50, config)
    yield serve(demo), runs
    demo.close()


def wait_job_done(timeout=180):
    from studio.runs.jobs import current as current_job

    end = time.time() + timeout
    while time.time() < end:
        job = current_job()
        if job is not None and job.done:
            return job
        time.sleep(0.2)
    raise AssertionError("training did not finish")


def test_page_imports_no_torch():
    code = ("import sys; from studio.ui.app import build_app; build_app('/tmp/studio-ui-import-check'); "
            "assert 'torch' not in sys.modules and 'unsloth' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_launch_flags():
    import launch

    args = launch.parse_args(["--port", "9999", "--auth", "ann:secret", "--runs-dir", "x", "--max-upload-mb", "5"])
    assert (args.port, args.auth, args.runs_dir, args.max_upload_mb, args.host) == (9999, "ann:secret", "x", 5.0,
                                                                                   "127.0.0.1")
    with pytest.raises(SystemExit):
        launch.parse_args(["--auth", "no-colon"])


def test_launch_limits_the_malloc_heaps_before_the_app_starts(monkeypatch):
    """The web app's first act: few heaps for all its threads (studio.machine.few_malloc_heaps), then the app."""
    import launch

    from studio import machine
    from studio.ui import app as ui_app

    order = []
    monkeypatch.setattr(machine, "few_malloc_heaps", lambda: order.append("heaps") or True)
    monkeypatch.setattr(ui_app, "launch", lambda args: order.append("app") or 0)
    assert launch.main(["--port", "9999"]) == 0 and order == ["heaps", "app"]


def test_wiring_through_gradio_client(app):
    from gradio_client import Client

    url, runs = app
    client = Client(url, verbose=False)
    summary, codes, _, _, problem = client.predict(api_name="/check_data")  # the defaults: the sample data
    assert not problem
    assert "**424** usable rows" in summary and "Rules Question" in summary
    assert [row[:2] for row in codes["data"]] == [["Other", "O"], ["Rules Question", "RQ"]]
    advised = client.predict("14.7", api_name="/apply_advice")  # the sample: 449 rows, 11% Rules Question
    assert 0.05 in advised and "70/30" in advised  # lora_dropout of 'Small dataset', balance of '90/10 imbalance'
    with pytest.raises(Exception, match="Nothing to apply"):  # the tiny model fits any card
        client.predict("7.6", api_name="/apply_fitting_plan")
    with pytest.raises(Exception, match="Pick a run"):
        client.predict(None, "some text", api_name="/classify")
    notes = client.predict(api_name="/start_training")[0]  # (the notes; then the poll's pace)
    assert "started" in notes
    job = wait_job_done()
    assert job.state == "finished"
    status = client.predict(api_name="/training_status")[0]
    assert "finished" in status and "30/30" in status
    verdict = client.predict(job.run.name, "rules about selling links", api_name="/classify")[0]
    assert "Before training the same model said" in verdict
    listing = client.predict(api_name="/list_runs")[0]
    assert job.run.name in [row[0] for row in listing["data"]]


@pytest.mark.browser
def test_whole_flow_in_a_real_browser(app, toy_file):
    """Upload a file, pick columns, train, watch the loss chart fill, evaluate, export adapters."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (apt-get install chromium): .ci/run does"
    url, runs = app
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            run_name = drive(page, url, toy_file)
        except Exception:
            page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    run = max((p for p in runs.iterdir() if (p / "run.json").exists()),  # the newest (names start with the data)
              key=lambda p: json.loads((p / "run.json").read_text())["created"])
    assert run.name == run_name
    assert (run / "exports" / "adapters" / "adapter_model.safetensors").exists()
    recorded = RunConfig.load(run / "run.json").data
    assert (recorded.text_column, recorded.label_column) == ("post", "category")
    assert Path(recorded.path).exists() and ".uploads" in recorded.path  # the upload outlives Gradio's temp
    for name in ("1-data", "2-labels", "3-model", "4-train", "5-evaluate", "6-playground", "7-export", "8-runs"):
        assert (SHOTS / f"{name}.png").stat().st_size > 20_000


def drive(page, url: str, toy_file: Path) -> str:
    """The clicks of a first-time user; returns the name of the run it trained."""
    page.goto(url)
    page.locator("#data-upload input[type=file]").set_input_files(str(toy_file))
    page.get_by_text("forum_posts.jsonl** (uploaded)", exact=False).or_(
        page.get_by_text("Using forum_posts.jsonl")).first.wait_for(timeout=30000)
    # the detector picked post / category; pick them explicitly anyway, as a user would
    for elem, value in (("#text-col", "post"), ("#label-col", "category")):
        page.locator(f"{elem} input").fill(value)
        page.locator(f"{elem} input").press("Enter")
    page.click("#check-data")
    page.get_by_text("usable rows").wait_for(timeout=60000)
    assert "text column post" in page.locator("body").inner_text().replace("*", "")
    assert "How hard is this data?" in page.locator("body").inner_text()
    page.screenshot(path=str(SHOTS / "1-data.png"), full_page=True)

    page.get_by_role("tab", name="2 · Labels").click()
    page.click("#find-issues")
    page.locator("#issues-status").get_by_text("likely label issues").wait_for(timeout=60000)
    page.locator("#suspects [data-testid='cell-0-1']").click()  # review the most likely one
    page.wait_for_timeout(500)
    row = page.locator("#review-row input").input_value()
    page.click("#save-decision")
    page.locator("#decisions-summary").get_by_text("1 decision saved", exact=False).wait_for(timeout=30000)
    page.screenshot(path=str(SHOTS / "2-labels.png"), full_page=True)

    page.get_by_role("tab", name="3 · Model & LoRA").click()
    page.get_by_text("rows per optimizer step").wait_for(timeout=30000)
    # no GPU here: the CPU's view first (what falls back, before Start), then a card picked to plan for
    page.locator("#fit-estimate").get_by_text("training runs on its CPU", exact=False).wait_for(timeout=30000)
    assert "adamw_8bit is not available" in page.locator("#fit-estimate").inner_text()
    page.locator("#gpu-choice input").fill("T4 / 16 GB card (14.7 GiB)")
    page.locator("#gpu-choice input").press("Enter")
    page.locator("#fit-estimate").get_by_text("peak reserved", exact=False).wait_for(timeout=30000)
    assert "Recipe advisor" in page.locator("#advice").inner_text()
    page.screenshot(path=str(SHOTS / "3-model.png"), full_page=True)

    page.get_by_role("tab", name="4 · Train").click()
    page.click("#start-training")
    page.get_by_text("started in").wait_for(timeout=60000)
    run_name = re.search(r"Run (\S+) started in", page.locator("body").inner_text()).group(1)
    page.locator("#train-status").get_by_text(f"{run_name}: finished").wait_for(timeout=180000)
    assert "finished (finished)" not in page.locator("#train-status").inner_text()
    assert "RAM estimate" in page.locator("#train-status").inner_text()  # estimate beside what was measured
    page.wait_for_timeout(1500)  # one more poll paints the last points
    points = page.locator("#loss-chart .scatterlayer .trace path.js-line").count()
    assert points >= 1, "the loss chart has no line"
    page.screenshot(path=str(SHOTS / "4-train.png"), full_page=True)

    evaluate_in_page(page)
    summary = page.locator("#eval-summary")
    table = summary.locator("table").first.inner_text()
    assert all(name in table for name in ("fine-tuned LLM", "classic", "blend", "★"))  # the three, one in use
    assert "In use:" in summary.inner_text()
    page.locator("#eval-use").get_by_text("Fine-tuned LLM", exact=True).click()  # use another one
    summary.get_by_text("(your choice)", exact=False).wait_for(timeout=30000)
    page.locator("#eval-use").get_by_text("Best on held-out rows", exact=False).click()
    summary.get_by_text("(chosen)", exact=False).wait_for(timeout=30000)
    page.screenshot(path=str(SHOTS / "5-evaluate.png"), full_page=True)

    page.get_by_role("tab", name="6 · Playground").click()
    page.wait_for_timeout(1000)
    page.fill("#play-text textarea", "rules question about links in my signature")
    page.click("#classify")
    page.get_by_text("Before training the same model said").wait_for(timeout=60000)
    page.screenshot(path=str(SHOTS / "6-playground.png"), full_page=True)

    page.get_by_role("tab", name="7 · Export").click()
    page.wait_for_timeout(1000)
    page.click("#export-adapters")
    page.get_by_text("adapters exported").wait_for(timeout=180000)
    link = page.locator("a[href*=\"adapters.zip\"]").first
    link.wait_for(timeout=30000)
    with page.expect_download() as download:  # the user leaves with a model
        link.click()
    assert Path(download.value.path()).stat().st_size > 10_000
    page.screenshot(path=str(SHOTS / "7-export.png"), full_page=True)

    page.get_by_role("tab", name="8 · Runs").click()
    page.wait_for_function(  # visible text only: the Runs tab lists the new run as finished
        "name => document.body.innerText.includes(name) && document.body.innerText.includes('30/30')",
        arg=run_name, timeout=30000)
    listed = page.locator("#runs-table").inner_text()  # the upload by its own name, not the kept copy's
    assert "forum_posts.jsonl" in listed and not re.search(r"[0-9a-f]{12}-forum_posts", listed)
    page.screenshot(path=str(SHOTS / "8-runs.png"), full_page=True)

    page.reload()  # a reloaded page reattaches to the last job
    page.get_by_role("tab", name="4 · Train").click()
    page.locator("#train-status").get_by_text(f"{run_name}: finished").wait_for(timeout=30000)
    page.get_by_role("tab", name="1 · Data").click()
    page.locator("#data-upload input[type=file]").set_input_files(str(toy_file))  # the reloaded page's file
    page.get_by_text("forum_posts.jsonl** (uploaded)", exact=False).or_(
        page.get_by_text("Using forum_posts.jsonl")).first.wait_for(timeout=30000)
    page.get_by_role("tab", name="2 · Labels").click()
    page.click("#find-issues")  # the decision made before the reload is still there
    page.locator("#decisions-summary").get_by_text("decision saved", exact=False).wait_for(timeout=60000)
    assert row and row in page.locator("#suspects").inner_text()
    page.click("#download-cleaned")
    page.locator("#cleaned-files").get_by_text("cleaned", exact=False).first.wait_for(timeout=30000)
    return run_name


@pytest.mark.browser
def test_first_use_in_a_real_browser(app, toy_file, tiny_model_dir, tmp_path):
    """What a newcomer trips over: a bad upload's message stays in the page (and no other data is used instead), a
    preset lists its changes and the Data view follows, the time is shown before Start, a collapsed model is called
    one, the decision columns are in view at 1400 px, and the newest run is preselected."""
    from conftest import toy_config
    from playwright.sync_api import sync_playwright

    from studio.train.worker import start_training

    url, runs = app
    fake = tmp_path / "photo.csv"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)  # an image renamed .csv
    balanced = tmp_path / "balanced.csv"
    pd.DataFrame(toy_rows(120, minority_every=2, seed=9), columns=["text", "label"]).to_csv(balanced, index=False)
    collapsed = start_training(toy_config(tiny_model_dir, balanced, max_steps=1, learning_rate=1e-9).replace(
        {"name": "planted-collapse"}), runs)  # an untrained model: one class for all
    assert collapsed.wait(120) and collapsed.state == "finished", collapsed.error
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            page.locator("#data-upload input[type=file]").set_input_files(str(fake))
            error = page.locator("#data-error")
            error.get_by_text("photo.csv", exact=False).first.wait_for(timeout=30000)
            page.wait_for_timeout(11000)  # a toast would be gone by now; the message is not
            assert "photo.csv" in error.inner_text() and error.is_visible()
            codes = page.locator("#codes")
            assert "label" in codes.inner_text() and "code" in codes.inner_text()  # headed, not "1 2 3"
            page.click("#check-data")  # no quiet fall back to the sample data, and the refusal's own words stay
            page.wait_for_timeout(3000)
            body = page.locator("body").inner_text()
            assert "usable rows" not in body and "does not look like a text table" in body  # the reason stays
            assert "No data file is in use" not in error.inner_text() and "photo.csv" in error.inner_text()
            page.screenshot(path=str(SHOTS / "first-use-bad-upload.png"), full_page=True)

            page.locator("#data-upload button[aria-label='Clear']").click()  # the file box's ×
            page.locator("#data-upload input[type=file]").set_input_files(str(toy_file))
            page.get_by_text("(uploaded)", exact=False).first.wait_for(timeout=30000)
            page.get_by_text("Split and balancing", exact=False).click()
            balance = page.locator("#field-balance input")
            balance.fill("50/50")
            balance.press("Enter")
            page.click("#check-data")
            summary = page.locator("#data-summary")
            summary.get_by_text("usable rows", exact=False).wait_for(timeout=60000)
            before = re.search(r"Training rows after balancing: (\d+)", summary.inner_text()).group(1)
            page.get_by_role("tab", name="3 · Model & LoRA").click()
            preset = page.locator("#preset input")
            preset.fill("90/10 imbalance")
            preset.press("Enter")
            page.click("#apply-preset")
            page.locator("#preset-help").get_by_text("50/50 → 70/30", exact=False).wait_for(timeout=30000)
            page.get_by_role("tab", name="1 · Data").click()
            page.wait_for_function(
                "b => !document.querySelector('#data-summary').innerText.includes('after balancing: ' + b + ' ')",
                arg=before, timeout=60000)  # the Data view follows the preset's new balance
            page.get_by_role("tab", name="3 · Model & LoRA").click()
            four_bit = page.locator("#field-load_in_4bit input")  # no GPU here: off, and not to be changed
            assert four_bit.input_value() == "off (no GPU)" and four_bit.is_disabled()
            assert not page.locator("#fit-chart").is_visible()  # the CPU's view has no chart: none is drawn
            estimate = page.locator("#estimate")
            estimate.get_by_text("steps ×", exact=False).wait_for(timeout=30000)
            assert "training" in estimate.inner_text()  # the time before Start (or when it will be measured)
            page.screenshot(path=str(SHOTS / "first-use-preset.png"), full_page=True)

            page.get_by_role("tab", name="5 · Evaluate").click()
            page.wait_for_timeout(1000)
            assert page.locator("#eval-run input").input_value() == "planted-collapse"  # the newest run
            page.click("#evaluate")
            page.locator("#eval-summary").get_by_text("Collapse", exact=False).wait_for(timeout=120000)
            header = page.locator("#disagreements").get_by_text("predicted", exact=True).first
            box = header.bounding_box()
            assert box and box["x"] + box["width"] <= 1400  # the decision columns are in view without scrolling
            page.screenshot(path=str(SHOTS / "first-use-collapse.png"), full_page=True)

            newer = start_training(toy_config(tiny_model_dir, balanced, max_steps=2).replace({"name": "newer-run"}),
                                       runs)
            assert newer.wait(120) and newer.state == "finished", newer.error
            page.get_by_role("tab", name="6 · Playground").click()
            page.get_by_role("tab", name="5 · Evaluate").click()
            page.wait_for_function("() => document.querySelector('#eval-run input').value === 'newer-run'",
                                   timeout=30000)  # a run trained since is preselected
            plain_words(page)
            batch_predictions_come_back(page, tmp_path)
        except Exception:
            page.screenshot(path=str(SHOTS / "first-use-failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def plain_words(page) -> None:
    """The first-use list's words: export buttons, the Runs columns and the comparison in the page's words, no
    setting's code name; the comparison fits the page."""
    page.get_by_role("tab", name="7 · Export").click()
    buttons = page.locator("#export-classifier, #export-adapters, #export-merged_16bit").all_inner_texts()
    assert buttons == ["Classifier (ready to use)", "LoRA adapter", "Merged model, 16-bit"]
    page.get_by_role("tab", name="8 · Runs").click()
    table = page.locator("#runs-table")
    table.get_by_text("LoRA rank", exact=False).first.wait_for(timeout=30000)
    head = table.locator("thead").inner_text()
    assert "Learning rate" in head and "lora_alpha" not in head and "learning_rate" not in head
    comparison = page.locator("#runs-comparison")
    comparison.get_by_text("Learning rate", exact=False).first.wait_for(timeout=30000)
    words = comparison.inner_text()
    assert "eval." not in words and "train." not in words
    box = comparison.bounding_box()
    assert box and box["x"] + box["width"] <= 1400  # run B in view
    page.screenshot(path=str(SHOTS / "first-use-words.png"), full_page=True)


def batch_predictions_come_back(page, folder) -> None:
    """Batch predictions run in the background with their progress in words and rows; a reloaded page finds them
    again, with the file to download."""
    posts = folder / "posts.csv"
    pd.DataFrame({"text": [f"rules glue paint lathe {i}" for i in range(300)]}).to_csv(posts, index=False)
    page.get_by_role("tab", name="5 · Evaluate").click()
    page.get_by_text("Batch predict a file").click()
    page.locator("#predict-in input[type=file]").set_input_files(str(posts))
    status = page.locator("#predict-status")
    status.get_by_text("Wrote 300 rows", exact=False).wait_for(timeout=120000)
    page.reload()
    page.get_by_role("tab", name="5 · Evaluate").click()
    status.get_by_text("Wrote 300 rows", exact=False).wait_for(timeout=30000)
    assert "Batch predictions of posts.csv" in status.inner_text()
    page.locator("#predict-out a[download='posts-predictions.csv']").wait_for(timeout=30000)  # the download
    page.screenshot(path=str(SHOTS / "first-use-batch-predictions.png"), full_page=True)


PAYLOADS = {
    "file": "<img src=x onerror=document.title='pwned-file'>",
    "header": "<img src=x onerror=document.title='pwned-header'>",
    "label": "<img src=x onerror=document.title='pwned-label'>",
    "script": "<script>document.title='pwned-script'</script>",
    "text": "<img src=x onerror=document.title='pwned-text'>",
    "link": "[see](javascript:document.title='pwned-link')",
}


@pytest.fixture(scope="module")
def crafted_file(tmp_path_factory):
    """A file someone else sent: script payloads in its name, its text column's header, its labels and its texts."""
    rows = []
    for i, (text, label) in enumerate(toy_rows(80, minority_every=3, seed=4)):
        flipped = i in (1, 2, 4)  # 'project …' posts labelled as the other class: suspects for the Labels tab
        label = PAYLOADS["label"] if (label == "Rules Question") != flipped else PAYLOADS["script"]
        extra = [PAYLOADS["text"], PAYLOADS["link"], "=HYPERLINK(\"http://x\",\"y\")", ""][i % 4]
        rows.append((f"{text} {extra}".strip(), label))
    path = tmp_path_factory.mktemp("crafted") / f"{PAYLOADS['file']}.csv"
    pd.DataFrame(rows, columns=[PAYLOADS["header"], "label"]).to_csv(path, index=False)
    return path


@pytest.mark.browser
def test_crafted_files_cannot_run_script_in_the_page(app, crafted_file):
    """Upload, check, find label issues, review one, train, evaluate, classify, export and look at the runs with a
    file full of script payloads: the page's title never changes and the payloads show as text."""
    from playwright.sync_api import sync_playwright

    url, runs = app
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        def untouched(where: str):
            assert page.title() == "Studio" and not dialogs, f"a payload ran ({where}): {page.title()!r} {dialogs}"

        try:
            walk_with_payloads(page, url, crafted_file, untouched)
        except Exception:
            page.screenshot(path=str(SHOTS / "payloads-failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def walk_with_payloads(page, url: str, crafted_file: Path, untouched) -> None:
    page.goto(url)
    page.locator("#data-upload input[type=file]").set_input_files(str(crafted_file))
    page.get_by_text("(uploaded)", exact=False).first.wait_for(timeout=30000)
    untouched("upload")
    assert PAYLOADS["file"] in page.locator("body").inner_text()  # the file's name, as text
    page.click("#check-data")
    summary = page.locator("#data-summary")
    summary.get_by_text("usable rows", exact=False).wait_for(timeout=60000)
    untouched("check data")
    assert PAYLOADS["header"] in summary.inner_text() and PAYLOADS["label"] in summary.inner_text()
    assert PAYLOADS["text"] in page.locator("body").inner_text()  # the preview's texts, as text
    page.screenshot(path=str(SHOTS / "payloads-1-data.png"), full_page=True)

    page.get_by_role("tab", name="2 · Labels").click()
    page.click("#find-issues")
    page.locator("#issues-status").get_by_text("likely label issues").wait_for(timeout=60000)
    page.locator("#suspects [data-testid='cell-0-1']").click()
    page.locator("#review-text").get_by_text("given", exact=False).wait_for(timeout=30000)
    untouched("label issues")
    page.screenshot(path=str(SHOTS / "payloads-2-labels.png"), full_page=True)

    page.get_by_role("tab", name="3 · Model & LoRA").click()
    page.get_by_text("rows per optimizer step").wait_for(timeout=30000)
    page.get_by_role("tab", name="4 · Train").click()
    page.click("#start-training")
    page.get_by_text("started in").wait_for(timeout=60000)
    run_name = re.search(r"Run (\S+) started in", page.locator("body").inner_text()).group(1)
    page.locator("#train-status").get_by_text(f"{run_name}: finished").wait_for(timeout=180000)
    untouched("training")

    evaluate_in_page(page)
    page.wait_for_timeout(1000)
    untouched("evaluate")
    assert PAYLOADS["label"] in page.locator("#eval-summary").inner_text()
    page.screenshot(path=str(SHOTS / "payloads-5-evaluate.png"), full_page=True)

    page.get_by_role("tab", name="6 · Playground").click()
    page.wait_for_timeout(1000)
    page.fill("#play-text textarea", PAYLOADS["text"] + " " + PAYLOADS["link"])
    page.click("#classify")
    page.get_by_text("Before training the same model said").wait_for(timeout=60000)
    page.wait_for_timeout(1000)
    untouched("playground")
    verdict = page.locator("#play-verdict").inner_text()
    assert PAYLOADS["label"] in verdict or PAYLOADS["script"] in verdict

    page.get_by_role("tab", name="7 · Export").click()
    page.wait_for_timeout(1000)
    page.click("#export-adapters")
    page.get_by_text("adapters exported").wait_for(timeout=180000)
    untouched("export")

    page.get_by_role("tab", name="8 · Runs").click()
    page.wait_for_function("name => document.body.innerText.includes(name)", arg=run_name, timeout=30000)
    page.wait_for_timeout(1500)
    untouched("runs")
    assert PAYLOADS["header"] in page.locator("body").inner_text()  # in the run's record, as text
    page.screenshot(path=str(SHOTS / "payloads-8-runs.png"), full_page=True)
