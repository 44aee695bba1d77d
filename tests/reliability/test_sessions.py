"""Load and concurrency: two sessions on one app while a run trains, and a 200,000-row file through the data side.
(Timings are measured by bench/ui_latency.py and bench/large_data.py, not asserted here.)"""

import sys
import time

import pytest
from conftest import REPO, serve

from studio.config import DataRecipe, RunConfig


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    from studio.ui.app import build_app

    config = RunConfig().replace({
        "model": {"name": str(tiny_model_dir), "max_seq_length": 256},
        "lora": {"use_gradient_checkpointing": "false", "r": 8},
        "train": {"max_steps": 100_000, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                  "save_steps": 5}})
    runs = tmp_path_factory.mktemp("sessions")
    demo = build_app(str(runs), 50, config)
    yield serve(demo), runs
    demo.close()


def test_two_sessions_share_one_live_run(app):
    from gradio_client import Client

    from studio.runs.jobs import current as current_job

    url, runs = app
    alice, bob = Client(url, verbose=False), Client(url, verbose=False)  # two separate sessions
    assert "started" in alice.predict(api_name="/start_training")[0]
    job = current_job()
    end = time.time() + 120
    while len(job.stream.records("train")) < 3 and time.time() < end:
        time.sleep(0.2)
    status = bob.predict(api_name="/training_status")[0]  # Bob sees Alice's run, live
    assert f"{job.run.name}</b>: running" in status and "step" in status
    with pytest.raises(Exception, match="already in progress"):
        bob.predict(api_name="/start_training")
    with pytest.raises(Exception, match="still training|stop it"):
        bob.predict(job.run.name, api_name="/export_adapters")
    with pytest.raises(Exception, match="still training"):
        bob.predict(job.run.name, True, api_name="/delete_run")
    assert (runs / job.run.name / "run.json").exists() and job.state == "running"
    listing = bob.predict(api_name="/list_runs")[0]
    assert [row[1] for row in listing["data"] if row[0] == job.run.name] == ["running"]
    bob.predict(api_name="/stop_training")  # either session can stop it
    assert job.wait(120) and job.state == "stopped"
    later = alice.predict(api_name="/training_status")[0]
    assert "stopped" in later


@pytest.mark.slow
def test_two_hundred_thousand_rows_split_and_balance(tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    from large_data import write_rows

    from studio.data.prepare import prepare_data

    path = write_rows(tmp_path / "many.csv", 200_000)
    prepared = prepare_data(DataRecipe(path=str(path)))
    counts = prepared.counts()
    summary = prepared.table.summary()
    assert summary["rows"] == 200_000 - 200 - 200  # 200 blank texts and 200 exact duplicates dropped, with reasons
    reasons = {d["reason"].split(" (")[0]: d["count"] for d in summary["dropped"]}
    assert reasons == {"empty text": 200, "exact duplicate": 200}
    total = sum(counts["input"].values())
    val_a = counts["val_a"]
    assert abs(val_a["Rules Question"] / sum(val_a.values()) - counts["input"]["Rules Question"] / total) < 0.01
    assert counts["val_b"]["Rules Question"] == counts["val_b"]["Other"]  # Val B balanced
    after = counts["train_after"]
    assert after["Rules Question"] / (after["Rules Question"] + after["Other"]) == pytest.approx(0.3, abs=0.01)
    sets = [set(prepared.split.train["text"]), set(prepared.split.val_a["text"]), set(prepared.split.val_b["text"])]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
