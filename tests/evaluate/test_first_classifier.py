"""The first classifier (#44): in a run's first seconds the classic model is fitted and evaluated on Val A / Val B,
kept with the run, and used by predict, the Python API (what serve loads), the Playground, Evaluate and the bundle
while the LLM trains; once the LLM is evaluated the three candidates compete as always."""

import threading

import numpy as np
import pandas as pd
import pytest
from conftest import toy_config, toy_rows, wait_for

from studio import Classifier
from studio.errors import StudioError

TEXTS = ["rules glue paint lathe 901", "project drill bread garden 902", "rules printer solder 903"]


def held_at(step: int, release: threading.Event):
    """A trainer callback that holds training after ``step`` until ``release`` is set: the LLM is still training."""
    from transformers import TrainerCallback

    class HoldAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                release.wait(timeout=300)

    return HoldAt()


@pytest.fixture(scope="module")
def training(tiny_model_dir, tmp_path_factory):
    """A run held at step 2 (its LLM training), with its first classifier made; released at the end."""
    from studio.train.worker import start_training

    folder = tmp_path_factory.mktemp("first")
    pd.DataFrame(toy_rows(240, minority_every=4, seed=9), columns=["text", "label"]).to_csv(folder / "toy.csv",
                                                                                           index=False)
    release = threading.Event()
    job = start_training(toy_config(tiny_model_dir, folder / "toy.csv", max_steps=12), folder / "runs",
                         callbacks=[held_at(2, release)])
    assert wait_for(lambda: (job.snapshot().get("step") or 0) >= 1, timeout=120), job.error
    assert wait_for(lambda: (job.run.classifier() or {}).get("first"), timeout=60)
    yield job, folder, release
    release.set()
    job.wait(300)


def test_the_classic_model_is_a_classifier_while_the_llm_trains(training, tmp_path):
    """Predict, the Python API and the bundle answer with the saved classic model's own probabilities, through
    the rule fitted on Val A; the fine-tuned LLM is asked for by name, and the answer says it is training."""
    from studio.classifier import classic
    from studio.door.export import export
    from studio.door.predict import predict_file

    job, folder, _ = training
    assert not job.done and job.run.first_only()
    record = job.run.classifier()
    assert record["use"] == "classic" and list(record["rules"]) == ["classic"]
    assert record["labels"] == ["Other", "Rules Question"] and record["first"]["training_rows"] > 0
    clf = Classifier.load(job.run.path)
    assert clf.info["classifier"] == "classic" and clf.labels == record["labels"]
    answers = clf.predict(TEXTS)
    raw = classic.probabilities(job.run.load_classic(), TEXTS, clf.labels)
    assert [a["label"] for a in answers] == [clf.labels[i] for i in raw.argmax(axis=1)]
    assert [a["label"] for a in answers] == ["Rules Question", "Other", "Rules Question"]
    with pytest.raises(StudioError, match="still training"):
        Classifier.load(job.run.path, use="llm")
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "new.csv", index=False)
    written = predict_file(job.run.path, tmp_path / "new.csv", tmp_path / "out.csv", folder / "runs",
                           log=lambda m: None)
    out = pd.read_csv(written.output)
    assert list(out["predicted_label"]) == [a["label"] for a in answers]
    assert np.allclose(out["p_Rules Question"], [a["probabilities"]["Rules Question"] for a in answers], atol=1e-4)
    bundle = export(job.run.path, "classifier", tmp_path / "bundle", folder / "runs", log=lambda m: None).result
    assert bundle.passed and "classic.skops" in bundle.files and not any(f.startswith("adapter") for f in bundle.files)
    assert "no language model is needed" in bundle.commands
    from_bundle = Classifier.load(bundle.path).predict(TEXTS)
    assert [a["probabilities"] for a in from_bundle] == [a["probabilities"] for a in answers]


def test_evaluate_and_the_playground_show_the_first_classifier(training):
    """Evaluate shows the classic model's Val A / Val B figures, the majority beside it, in words that say the LLM
    is training; the Playground answers with it and says the same; both while training, nothing loaded."""
    from studio.door.evaluation import evaluate
    from studio.door.predict import classify

    job, folder, _ = training
    evaluated = evaluate(job.run.path, folder / "runs", log=lambda m: None)
    report = evaluated.report
    assert report["first"]["training_rows"] > 0 and "val_a" not in report  # no LLM figures yet
    assert report["chosen"]["name"] == "classic" and report["chosen"]["val_a"]["n"] > 0
    assert report["chosen"]["val_a"]["macro_f1"] == report["candidates"]["classic"]["val_a"]["macro_f1"]
    assert report["majority_baseline"]["val_a"]["n"] == report["chosen"]["val_a"]["n"]
    words = evaluated.markdown()
    assert "this run's first classifier" in words and "The fine-tuned LLM is training" in words
    assert "★ classic" in words and "majority" in words
    a = evaluated.figures(evaluated.at(None), "val_a")
    assert sum(map(sum, a["confusion_matrix"]["counts"])) == a["n"]  # the matrices the page draws
    with pytest.raises(StudioError, match="first classifier only"):
        evaluate(job.run.path, folder / "runs", mode="generate", log=lambda m: None)
    shown = classify(job.run.path, TEXTS[0], folder / "runs", log=lambda m: None)
    assert shown.in_use == "classic" and shown.label == "Rules Question" and shown.before_label is None
    assert "still training" in shown.markdown() and list(shown.views) == ["classic"]


def test_the_llm_then_competes_and_replaces_the_first_classifier(training):
    """Released, the run finishes; its evaluation has all three candidates, the classic model in use refitted on
    every labelled row, and no first classifier left; the record kept the training's own phases meanwhile."""
    from studio.door.evaluation import evaluate

    job, folder, release = training
    release.set()
    assert job.wait(300) and job.state == "finished", job.error
    assert "phases" in job.run.record() and job.run.record()["classifier"]["first"]  # written beside the phases
    evaluated = evaluate(job.run.path, folder / "runs", log=lambda m: None)
    record = job.run.classifier()
    assert "first" not in record and set(record["rules"]) == {"llm", "classic", "blend"}
    assert "first" not in evaluated.report and "val_a" in evaluated.report
    assert job.run.has_classic_in_use()
