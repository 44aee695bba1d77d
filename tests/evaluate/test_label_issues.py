"""Label sanity over the whole file: planted flips come out on top (classic model, and LLM folds on the tiny model);
the CLI's JSON; decisions kept beside the file; the cleaned file round-trips through the readers; a retrain records
the edits and the source file's hash."""

import json
import random
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SAMPLE, toy_config, toy_rows

from studio.config import DataRecipe
from studio.data.edits import Decision, cleaned_copy, load_decisions, save_decision
from studio.data.prepare import file_sha256, prepare_data
from studio.data.readers import read_table
from studio.door.labels import llm_out_of_fold
from studio.errors import StudioError
from studio.evaluate import label_issues


def plant_flips(frame: pd.DataFrame, share: float, seed: int, label_col: str = "label"):
    """Flip ``share`` of the labels to another label, at random; returns (frame, flipped positions)."""
    rng = random.Random(seed)
    labels = sorted(frame[label_col].unique())
    flipped = rng.sample(range(len(frame)), max(1, round(share * len(frame))))
    frame = frame.copy()
    for i in flipped:
        frame.iloc[i, frame.columns.get_loc(label_col)] = rng.choice([lb for lb in labels
                                                                      if lb != frame.iloc[i][label_col]])
    return frame, flipped


@pytest.fixture(scope="module")
def noisy_sample(tmp_path_factory):
    frame = pd.read_csv(SAMPLE)
    noisy, flipped = plant_flips(frame, 0.05, seed=7)
    path = tmp_path_factory.mktemp("noisy") / "posts.csv"
    noisy.to_csv(path, index=False)
    return path, {i + 2 for i in flipped}  # a CSV with a header: data row i is on line i + 2


def test_the_classic_model_ranks_planted_flips_on_top(noisy_sample):
    path, planted = noisy_sample
    prepared = prepare_data(DataRecipe(path=str(path)))
    result = label_issues.find(prepared)
    assert result.rows_checked == len(prepared.table.frame) and result.sources == ["classic"]
    top = set(result.ranking["row"].head(2 * len(planted)))
    assert len(top & planted) >= 0.5 * len(planted)  # a random ranking would find ~10%
    first = result.table.iloc[0]
    assert first["suggested"] != first["label"] and 0 < first["score"] <= 1
    assert list(result.table["score"]) == sorted(result.table["score"], reverse=True)


def test_conflicting_duplicates_lead(tmp_path):
    rows = [(f"post about glue {i}", "Other") for i in range(40)] + [(f"rules on links {i}", "Rules")
                                                                     for i in range(20)]
    rows += [("same text twice", "Other"), ("same text twice", "Rules")]  # lines 62 and 63 (the header is line 1)
    path = tmp_path / "c.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    result = label_issues.find(prepare_data(DataRecipe(path=str(path))))
    assert set(result.table["source"].head(2)) == {"conflicting duplicate"}
    assert set(result.table["row"].head(2)) == {62, 63}


def test_the_cli_prints_issues_and_a_summary(noisy_sample):
    path, planted = noisy_sample
    out = subprocess.run([sys.executable, "-m", "studio", "label-issues", str(path), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert set(report["summary"]) == {"rows_checked", "issues_found", "sources", "minutes"}
    assert report["summary"]["sources"] == ["classic"] and report["summary"]["issues_found"] == len(report["issues"])
    issue = report["issues"][0]
    assert set(issue) >= {"row", "text", "label", "suggested", "score"}
    frame = pd.read_csv(path)
    assert frame.iloc[issue["row"] - 2]["text"] == issue["text"]  # the row is the file's line
    assert len({i["row"] for i in report["issues"]} & planted) >= 0.4 * len(planted)
    bad = subprocess.run([sys.executable, "-m", "studio", "label-issues", str(path), "--llm-folds", "1"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "at least 2 folds" in bad.stderr


def test_llm_folds_find_planted_flips_and_a_stop_keeps_finished_folds(tiny_model_dir, tmp_path):
    rows = toy_rows(160, minority_every=3, seed=5, words_per_row=6)
    frame = pd.DataFrame(rows, columns=["text", "label"])
    noisy, flipped = plant_flips(frame, 0.05, seed=3)
    path = tmp_path / "toy.csv"
    noisy.to_csv(path, index=False)
    config = toy_config(tiny_model_dir, path, max_steps=30)
    prepared = prepare_data(config.data)
    workdir = tmp_path / "folds"
    stop = threading.Event()
    seen = []

    def stop_after_the_first(message, fraction):  # a user pressing Stop during the second fold
        seen.append(message)
        if message.startswith("LLM fold 2"):
            stop.set()

    assert llm_out_of_fold(prepared, config, 2, workdir, progress=stop_after_the_first,
                                        stop=stop, log=lambda m: None) is None
    assert (workdir / "fold-0.npy").exists() and not (workdir / "fold-1.npy").exists()
    logs = []
    probs = llm_out_of_fold(prepared, config, 2, workdir, log=logs.append)  # continues
    assert "Fold 1 of 2: kept from an earlier run." in logs and not np.isnan(probs).any()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    result = label_issues.find(prepared, llm_probs=probs)
    assert result.sources == ["classic", "LLM"]
    planted = {i + 2 for i in flipped}
    assert len(set(result.ranking["row"].head(2 * len(planted))) & planted) >= 0.5 * len(planted)
    with pytest.raises(StudioError, match="at least 2 folds"):
        llm_out_of_fold(prepared, config, 1, workdir)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet", ".xlsx"])
def test_decisions_are_kept_and_the_cleaned_file_round_trips(tmp_path, suffix):
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "post": ["one", "two", "three", "four"],
                          "category": ["x", "y", "x", "y"]})
    path = tmp_path / f"data{suffix}"
    {".csv": lambda: frame.to_csv(path, index=False), ".tsv": lambda: frame.to_csv(path, sep="\t", index=False),
     ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
     ".json": lambda: frame.to_json(path, orient="records"), ".parquet": lambda: frame.to_parquet(path),
     ".xlsx": lambda: frame.to_excel(path, index=False)}[suffix]()
    rows = read_table(path).source_rows
    save_decision(path, Decision(rows[0], "relabel", "x", "y", "one"), ["x", "y"])
    save_decision(path, Decision(rows[1], "drop", "y", None, "two"), ["x", "y"])
    save_decision(path, Decision(rows[2], "keep", "x", None, "three"), ["x", "y"])
    assert set(load_decisions(path)) == set(rows[:3])  # a reload reads them back from beside the file
    with pytest.raises(StudioError, match="Relabel to one of"):
        save_decision(path, Decision(rows[3], "relabel", "y", "zzz"), ["x", "y"])
    cleaned, edits, _ = cleaned_copy(path, "category", tmp_path / "out")
    assert cleaned.suffix == suffix
    back = read_table(cleaned).frame
    assert list(back.columns) == ["id", "post", "category"]
    assert list(back["post"]) == ["one", "three", "four"] and list(back["category"]) == ["y", "x", "y"]
    assert list(pd.read_csv(edits)["action"]) == ["relabel", "drop"]


def test_a_retrain_on_the_cleaned_file_records_the_edits(tiny_model_dir, toy_csv, tmp_path):
    from studio.train.worker import start_training

    path = tmp_path / "toy.csv"
    path.write_bytes(toy_csv.read_bytes())
    save_decision(path, Decision(2, "relabel", "Rules Question", "Other", "x"), ["Other", "Rules Question"])
    cleaned, _, decisions = cleaned_copy(path, "label", tmp_path / "out")
    config = toy_config(tiny_model_dir, cleaned, max_steps=2)
    config.data.edits = {"source": str(path), "source_sha256": file_sha256(path),
                         "edits": [{"row": 2, "action": "relabel", "label": "Rules Question", "new_label": "Other"}]}
    job = start_training(config, tmp_path / "runs")
    assert job.wait(120) and job.state == "finished", job.error
    recorded = job.run.config().data
    assert recorded.edits["source_sha256"] == file_sha256(path) and recorded.edits["edits"][0]["row"] == 2
    assert recorded.path == str(cleaned) and recorded.sha256 == file_sha256(cleaned)


def test_two_sources_are_stacked_on_the_given_labels():
    """A source that knows the true labels (moderately sure) and one that knows nothing but is sure of itself: their
    average lets the second scatter the planted flips among the rows, the stacked probabilities learn to lean on the
    first and rank the flips first. One source is used as it is."""
    rng = np.random.default_rng(0)
    n, flips = 400, 20
    truth = rng.integers(0, 2, n)
    given = truth.copy()
    given[:flips] = 1 - given[:flips]  # the planted flips: rows 0-19
    knows = np.column_stack([np.where(truth == 0, 0.8, 0.2), np.where(truth == 1, 0.8, 0.2)])
    sure = rng.integers(0, 2, n)
    guesses = np.column_stack([np.where(sure == 0, 0.99, 0.01), np.where(sure == 1, 0.99, 0.01)])
    assert label_issues.combine([knows]) is knows

    def flips_first(probs) -> int:
        quality = probs[np.arange(n), given]
        return len(set(np.argsort(quality, kind="stable")[:flips]) & set(range(flips)))

    stacked = label_issues.combine([knows, guesses], given)
    assert stacked.shape == (n, 2) and np.allclose(stacked.sum(axis=1), 1.0)
    assert flips_first(stacked) >= 18 and flips_first((knows + guesses) / 2) <= 14


def test_too_few_rows_of_a_class_to_cross_fit_falls_back_to_the_average():
    given = np.array([0] * 30 + [1])  # one row of class 1: no folds can hold it out and still fit it
    a, b = np.random.default_rng(1).dirichlet([1, 1], 31), np.random.default_rng(2).dirichlet([1, 1], 31)
    assert np.array_equal(label_issues.combine([a, b], given), (a + b) / 2)
