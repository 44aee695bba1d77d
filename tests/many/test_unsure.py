"""'Unsure' (#41): a set without an out-of-scope class may answer "unsure" where no class is likely enough, the cut
fitted on held-out rows to keep the answered texts right a chosen share of the time; the answer and its figures
travel through the report, predict, the Python API, REST, the bundle and the Playground."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import doubtful_rows

from studio.classifier.candidates import UNSURE, label_of, macro_f1
from studio.classifier.rules import Rule, Sources, Task, best_unsure, fit_rule
from studio.data.labels import unsure_target
from studio.errors import StudioError
from studio.evaluate.metrics import set_metrics


def _noisy_probs(rng, n, classes):
    """Rows the model is sure of and right about, and rows it is unsure of and often wrong about."""
    y = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    sure = rng.random(n) < 0.7
    logits[sure, y[sure]] += 5.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, y


def test_the_unsure_cut_keeps_the_answered_texts_right_as_often_as_asked():
    rng = np.random.default_rng(0)
    probs, y = _noisy_probs(rng, 800, 5)
    decided = probs.argmax(axis=1)
    assert np.mean(decided == y) < 0.9
    cut = best_unsure(probs, decided, y, 0.95)
    answered = probs.max(axis=1) >= cut
    assert np.mean(decided[answered] == y[answered]) >= 0.95 and 0.5 < answered.mean() < 0.95
    assert best_unsure(probs, decided, y, 0.5) is None  # every answer is already right often enough
    assert best_unsure(probs, (y + 1) % 5, y, 0.9) is None  # no cut gets there: every text keeps a class
    task = Task(natural=[0.2] * 5, llm_train=[0.2] * 5, classic_train=[0.2] * 5, minority=0, unsure=0.95)
    rule = fit_rule("classic", Sources(None, probs), y, task)
    assert rule.unsure_below is not None and "'unsure' when its answer's probability is under" in rule.words()
    assert Rule.from_dict(rule.to_dict()).unsure_below == rule.unsure_below  # kept with the run's decision
    out = rule.decide(rule.probabilities(Sources(None, probs), task), 0)
    assert set(np.unique(out)) <= set(range(6)) and (out == 5).any()  # one past the classes: "unsure"
    assert label_of(list("abcde"), 5) == UNSURE and label_of(list("abcde"), 4) == "e"
    # An unsure answer is wrong and nobody's false positive: macro-F1 as scikit-learn counts it.
    from sklearn.metrics import f1_score

    assert macro_f1(y, out, 5) == pytest.approx(f1_score(y, out, labels=list(range(5)), average="macro"))
    blend = fit_rule("blend", Sources(probs, probs), y, task)
    assert blend.unsure_below is not None and blend.parts["llm"].unsure_below is None  # the blend's own rule decides
    with_reject = Task(natural=[0.2] * 5, llm_train=[0.2] * 5, classic_train=[0.2] * 5, minority=0, reject=0,
                       unsure=0.95)
    assert fit_rule("classic", Sources(None, probs), y, with_reject).unsure_below is None  # the out-of-scope class


def test_unsure_answers_are_counted_apart():
    truth = ["a", "a", "b", "b", "c", "c"]
    pred = ["a", UNSURE, "b", "a", UNSURE, "c"]
    metrics = set_metrics(truth, pred, ["a", "b", "c"], "c")
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["answered"] == {"unsure": 2, "share": pytest.approx(4 / 6), "accuracy": pytest.approx(3 / 4)}
    assert metrics["confusion_matrix"]["predicted"] == ["a", "b", "c", UNSURE]
    assert metrics["confusion_matrix"]["counts"] == [[1, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]]
    assert "answered" not in set_metrics(truth, truth, ["a", "b", "c"], "c")


def test_the_unsure_setting_is_checked():
    assert unsure_target(0.9, ["a", "b"], None) == 0.9
    assert unsure_target(0.9, ["a", "b", "other"], "other") is None  # the out-of-scope class answers instead
    assert unsure_target(0.0, ["a", "b"], None) is None
    with pytest.raises(StudioError, match="above 0 and below 1"):
        unsure_target(95, ["a", "b"], None)
    with pytest.raises(StudioError, match="already have a class 'Unsure'"):
        unsure_target(0.9, ["yes", "no", "Unsure"], None)


@pytest.fixture(scope="module")
def unsure_run(tiny_model_dir, tmp_path_factory):
    """A run on rows a third of which are doubtful, with 'unsure' asked for (answered texts right 98% of the
    time)."""
    from conftest import toy_config

    from studio.door.evaluation import evaluate
    from studio.train.worker import start_training

    folder = tmp_path_factory.mktemp("unsure")
    pd.DataFrame(doubtful_rows(80, 0), columns=["text", "label"]).to_csv(folder / "topics.csv", index=False)
    config = toy_config(tiny_model_dir, folder / "topics.csv", max_steps=12).replace(
        {"data": {"rubric": "", "unsure": 0.98}})
    job = start_training(config, folder / "runs")
    assert job.wait(300) and job.state == "finished", job.error
    evaluated = evaluate(job.run.path, folder / "runs", log=lambda m: None)
    return job.run, folder, evaluated


def test_an_unsure_run_reports_and_answers_unsure_everywhere(unsure_run, tmp_path):
    from fastapi.testclient import TestClient

    from studio import Classifier
    from studio.door.export import export
    from studio.door.predict import classify
    from studio.serve.app import build_app
    from studio.serve.server import load_classifier

    run, folder, evaluated = unsure_run
    report = evaluated.report
    assert report["unsure"] == {"target": 0.98} and "out_of_scope" not in report["val_a"]
    cut = report["chosen"]["rule"]["unsure_below"]
    assert cut is not None, report["chosen"]["why"]
    answered = report["chosen"]["val_a"]["answered"]
    assert answered["unsure"] >= 1 and 0 < answered["share"] < 1
    assert any("'Unsure' when the answer's probability is under" in v for v in report["verdicts"])
    assert "share answered" in "\n".join(evaluated.lines())
    # Every face answers "unsure" for the same texts.
    texts = [t for t, _ in doubtful_rows(20, 1)]
    clf = Classifier.load(run.path)
    got = clf.predict(texts)
    unsure = [i for i, g in enumerate(got) if g["label"] == UNSURE]
    assert unsure and len(unsure) < len(texts)
    assert all(max(got[i]["probabilities"].values()) < cut + 1e-6 for i in unsure)
    frame = clf.engine.predict_frame(texts)
    assert pd.isna(frame.loc[unsure[0], "predicted_code"]) and "unsure" in frame.loc[unsure[0], "note"]
    with TestClient(build_app(load_classifier(run.path, log=lambda m: None))) as client:
        body = client.post("/v1/classify", json={"texts": texts}).json()
    assert [r["label"] for r in body["results"]] == [g["label"] for g in got]
    exported = export(run.path, "classifier", tmp_path / "bundle", folder / "runs", overwrite=True, log=lambda m: None)
    assert exported.result.passed, exported.result.to_dict()
    assert [g["label"] for g in Classifier.load(exported.result.path).predict(texts)] == [g["label"] for g in got]
    said = classify(run.path, texts[unsure[0]], folder / "runs", log=lambda m: None)
    assert said.label == UNSURE and said.code == "" and "cut fitted on held-out rows" in said.markdown()
    assert json.loads((run.path / "run.json").read_text())["config"]["data"]["unsure"] == 0.98  # headless too
