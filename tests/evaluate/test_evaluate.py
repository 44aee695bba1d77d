"""Evaluation on the tiny model: metrics against hand-computed ones, KV reuse == plain batching, scoring ==
generate, thresholds, predictions, the eval/predict CLIs, the baseline, disagreements, periodic evaluation."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import toy_rows

from studio.classifier.classic import fit_on_every_row
from studio.classifier.engine import RunClassifier
from studio.classifier.rules import Rule
from studio.classifier.scoring import INVALID, LabelScorer, parse_answer
from studio.config import RunConfig
from studio.errors import StudioError
from studio.evaluate.evaluation import evaluate_model
from studio.evaluate.metrics import set_metrics
from studio.evaluate.predict import predict_file
from studio.evaluate.saved_run import evaluate_run
from studio.evaluate.verdicts import summary_lines
from studio.models.trained import load_run_model
from studio.runs.folder import RunDir
from studio.train.worker import start_training

REPO = __import__("conftest").REPO
MISLABELED = [f"rules about selling and links {i}" for i in range(3)]


def test_metrics_match_hand_computed_values():
    truth = ["A", "A", "A", "B", "B"]
    pred = ["A", "B", "A", "B", "A"]
    m = set_metrics(truth, pred, ["A", "B"], minority="B")
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["A"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_class"]["B"] == pytest.approx({"precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2})
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["minority_recall"] == pytest.approx(0.5)
    assert m["confusion_matrix"]["counts"] == [[2, 1], [1, 1]]
    assert np.allclose(m["confusion_matrix"]["normalized"], [[2 / 3, 1 / 3], [0.5, 0.5]], atol=1e-4)


def test_invalid_generations_count_as_wrong_and_get_a_column():
    m = set_metrics(["A", "B", "B"], ["A", INVALID, "B"], ["A", "B"], minority="B")
    assert m["invalid"] == 1 and m["per_class"]["B"]["recall"] == 0.5
    assert m["confusion_matrix"]["predicted"] == ["A", "B", INVALID]
    assert m["confusion_matrix"]["counts"] == [[1, 0, 0], [0, 1, 1]]


def test_threshold_moves_predictions():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    labels = ["O", "RQ"]

    def predict_with_threshold(probs, labels, positive, threshold):  # a rule's decision, as every face takes it
        return [labels[i] for i in Rule("llm", threshold=threshold).decide(probs, labels.index(positive))]

    assert predict_with_threshold(probs, labels, "RQ", None) == ["O", "O", "RQ"]
    assert predict_with_threshold(probs, labels, "RQ", 0.35) == ["O", "RQ", "RQ"]
    assert predict_with_threshold(probs, labels, "RQ", 0.8) == ["O", "O", "O"]


@pytest.mark.parametrize("text,expected", [("RQ", "Rules Question"), (" rq.\n", "Rules Question"),
                                           ("O", "Other"), ("Rules Question", "Rules Question"),
                                           ("O because it is about lathes", "Other"), ("maybe", INVALID),
                                           ("", INVALID)])
def test_parse_generated_answers(text, expected):
    assert parse_answer(text, {"Rules Question": "RQ", "Other": "O"}) == expected


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """A finished run on a learnable toy task with three deliberately mislabeled rows."""
    rows = toy_rows(150, minority_every=4, seed=1) + [(t, "Other") for t in MISLABELED]
    folder = tmp_path_factory.mktemp("eval")
    data = folder / "toy.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(data, index=False)
    config = RunConfig().replace({
        "model": {"name": str(tiny_model_dir), "max_seq_length": 256},
        # single-token codes: then greedy generation and constrained scoring must agree exactly
        "data": {"path": str(data), "rubric": "Answer R or O.", "val_fraction": 0.2,
                 "label_codes": {"Rules Question": "R", "Other": "O"}},
        "lora": {"use_gradient_checkpointing": "false", "r": 8, "lora_alpha": 16},
        "train": {"max_steps": 40, "learning_rate": 5e-3, "warmup_steps": 2, "per_device_train_batch_size": 8,
                  "gradient_accumulation_steps": 1, "eval_steps": 20, "eval_max_rows": 30}})
    job = start_training(config, folder / "runs")
    assert job.wait(300) and job.state == "finished", job.error
    return job, folder


def test_periodic_evaluation_feeds_the_stream(trained):
    job, _ = trained
    evals = job.stream.records("eval")
    assert [e["step"] for e in evals] == [20, 40]
    assert all(0 <= e["macro_f1"] <= 1 and e["minority_recall"] is not None for e in evals)
    assert evals[-1]["eval_rows"] <= 30 + evals[-1]["minority_rows"]


def test_the_live_minority_recall_is_read_on_enough_rows(tmp_path):
    """A rare class keeps at least MINORITY_ROWS rows in the live sample (at its natural 2% it had 3 of 150: its
    recall line jumped 0 -> 1 -> 0.5), the rest stays a stratified sample of the cap, and the chart names the count."""
    from studio.config import RunConfig
    from studio.data.prepare import prepare_data
    from studio.evaluate.periodic import MINORITY_ROWS, PeriodicEvaluator
    from studio.ui.charts import eval_points

    rows = [(f"rules glue {i}", "Rules Question") if i % 50 == 0 else (f"project paint {i}", "Other")
            for i in range(6000)]
    path = tmp_path / "rare.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    config = RunConfig().replace({"data": {"path": str(path)}, "train": {"eval_max_rows": 150}})
    prepared = prepare_data(config.data)
    evaluator = PeriodicEvaluator(prepared, None, config)
    in_val_a = int((prepared.split.val_a["label"] == "Rules Question").sum())
    natural = 150 * in_val_a / len(prepared.split.val_a)
    assert evaluator.minority_rows == min(in_val_a, MINORITY_ROWS) > 4 * natural
    sample = evaluator.val_a
    assert sample.index.is_unique and set(sample.index) <= set(prepared.split.val_a.index)
    assert (sample["label"] == "Other").sum() == pytest.approx(147, abs=2)  # the cap's stratified share
    chart = eval_points([{"kind": "eval", "step": 10, "macro_f1": 0.5, "minority_recall": 0.4,
                          "minority_rows": evaluator.minority_rows}])
    assert f"minority recall ({evaluator.minority_rows} rows)" in [trace.name for trace in chart.data]


def test_kv_reuse_equals_plain_batching(trained):
    job, _ = trained
    p = job.prepared
    texts = list(p.split.val_a["text"]) + ["a", "x " * 60]  # odd lengths exercise the padding
    for codes in (p.codes, {"Other": "Oth", "Rules Question": "RQX"}):  # single- and multi-token codes
        reuse = LabelScorer(job.model, job.tokenizer, codes, p.rubric, p.prompt_format, batch_size=7)
        plain = LabelScorer(job.model, job.tokenizer, codes, p.rubric, p.prompt_format, batch_size=3,
                            reuse_prefix=False)
        a, b = reuse.score(texts), plain.score(texts)
        assert np.abs(a.probs - b.probs).max() < 1e-4
        assert np.abs(a.logprobs - b.logprobs).max() < 1e-3
        one = LabelScorer(job.model, job.tokenizer, codes, p.rubric, p.prompt_format, batch_size=1)
        assert np.abs(one.score(texts).probs - a.probs).max() < 1e-4  # batching changes nothing
        assert np.allclose(a.probs.sum(axis=1), 1.0)


def test_scoring_equals_generate_where_generate_is_valid(trained):
    """With single-token codes, greedy generation's first token is the arg-max over the whole vocabulary, so
    whenever it is a code, constrained scoring picks the same one. (Multi-token codes can differ on near-ties:
    greedy commits to the first token, scoring sums the whole code.)"""
    job, _ = trained
    assert all(len(job.tokenizer.encode(c, add_special_tokens=False)) == 1 for c in job.prepared.codes.values())
    p = job.prepared
    scorer = LabelScorer(job.model, job.tokenizer, p.codes, p.rubric, p.prompt_format)
    texts = list(p.split.val_a["text"]) + list(p.split.val_b["text"])
    scored = scorer.score(texts).predicted
    generated, raw = scorer.generate(texts)
    valid = [i for i, g in enumerate(generated) if g != INVALID]
    assert len(valid) >= 0.8 * len(texts)
    mismatches = [(texts[i], scored[i], generated[i], raw[i]) for i in valid if scored[i] != generated[i]]
    assert not mismatches


def test_in_memory_evaluation_with_baseline_and_disagreements(trained):
    job, _ = trained
    evaluation = evaluate_model(job.model, job.tokenizer, job.prepared, include_train=True)
    report = evaluation.report()
    assert report["val_a"]["accuracy"] >= 0.9 and report["val_b"]["minority_recall"] >= 0.9
    assert report["baseline"]["val_a"]["macro_f1"] < report["val_a"]["macro_f1"]  # training bought something
    assert report["pr_curve"]["val_a"]["positive"] == "Rules Question"
    flagged = evaluation.disagreements()
    assert set(MISLABELED) <= set(flagged["text"].head(len(MISLABELED) + 2))  # the planted label noise, on top
    assert (flagged["confidence"].diff().dropna() <= 0).all()


def test_eval_cli_json_and_generate_mode(trained):
    job, folder = trained
    result = subprocess.run([sys.executable, "-m", "studio", "eval", str(job.run.path), "--json"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    for name in ("val_a", "val_b"):
        for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix"):
            assert key in report[name]
        assert report[name]["confusion_matrix"]["labels"] == ["Other", "Rules Question"]
        assert set(report[name]["per_class"]["Other"]) == {"precision", "recall", "f1", "support"}
    assert (job.run.path / "eval.json").exists() and (job.run.path / "disagreements.csv").exists()
    assert job.run.record()["eval_summary"]["val_a"]["macro_f1"] == report["val_a"]["macro_f1"]
    loaded = load_run_model(job.run)
    _, generated = evaluate_run(job.run.path, mode="generate", untrained=False, loaded=loaded)
    assert "invalid" in generated and generated["val_a"]["accuracy"] >= 0.8


def test_three_candidates_the_one_in_use_and_the_override(trained, tmp_path):
    """eval --json carries each candidate's figures and the one in use with why; the classic model is kept without
    pickle and reloads to the same probabilities; predict uses the classifier in use; --use overrides and is kept."""
    job, _ = trained
    run = job.run
    loaded = load_run_model(run)
    evaluation, report = evaluate_run(run.path, untrained=False, use="auto", loaded=loaded)
    assert set(report["candidates"]) == {"llm", "classic", "blend"}
    for candidate in report["candidates"].values():
        assert set(report["val_a"]) <= set(candidate["val_a"]) and set(report["val_b"]) <= set(candidate["val_b"])
    chosen = report["chosen"]
    assert chosen["name"] in report["candidates"] and chosen["override"] is None and chosen["why"]
    record = run.classifier()
    assert record["use"] == chosen["name"] and set(record["rules"]) == {"llm", "classic", "blend"}
    assert run.record()["eval_summary"]["chosen_val_a"]["name"] == chosen["name"]
    assert (run.path / "classic.skops").read_bytes()[:2] == b"PK"  # scikit-learn's own zip format, no pickle
    split = job.prepared.split
    texts = list(split.val_a["text"])
    # The figures are the classic model's fitted on the training rows; the one in use learnt from every labelled row.
    assert np.allclose(run.load_classic(held_out=True).predict_proba(texts),
                       evaluation.classic_model.predict_proba(texts))
    every = fit_on_every_row(split.train, split.val_a, split.val_b)
    assert np.allclose(run.load_classic().predict_proba(texts), every.predict_proba(texts))
    assert not np.allclose(run.load_classic().predict_proba(texts), evaluation.classic_model.predict_proba(texts))
    assert report["classic_in_use"] == {"rows": len(split.train) + len(split.val_a) + len(split.val_b),
                                        "held_out_rows": len(split.train), "this_file": False}
    said = [v for v in report["verdicts"] if "learnt from all" in v]
    assert len(said) == (chosen["name"] in ("classic", "blend"))
    kept = (run.path / "classic.skops").stat().st_mtime_ns
    src = tmp_path / "posts.csv"
    pd.DataFrame({"text": texts[:6], "id": range(6)}).to_csv(src, index=False)
    in_use = predict_file(run.path, src, tmp_path / "in_use.csv", loaded=loaded).preview
    expected = RunClassifier.of_run(run, loaded=loaded).predict_frame(texts[:6])
    assert list(in_use["predicted_label"]) == list(expected["predicted_label"])
    result = subprocess.run([sys.executable, "-m", "studio", "eval", str(run.path), "--json", "--use", "llm",
                             "--no-baseline"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    overridden = json.loads(result.stdout)["chosen"]
    assert overridden["name"] == "llm" and overridden["override"] == "llm" and run.classifier()["use"] == "llm"
    as_llm = predict_file(run.path, src, tmp_path / "llm.csv", loaded=loaded).preview
    by_card = RunClassifier.of_run(run, use="llm", loaded=loaded).predict_frame(texts[:6])
    assert list(as_llm["predicted_label"]) == list(by_card["predicted_label"])
    evaluate_run(run.path, untrained=False, use="auto", loaded=loaded)  # back to the one the figures choose
    assert run.classifier()["override"] is None
    assert (run.path / "classic.skops").stat().st_mtime_ns == kept  # evaluating again reuses both classic models


def test_a_classic_model_file_of_other_types_is_refused(trained, tmp_path):
    """Loading a run never runs code from its folder: a classic.skops holding any type scikit-learn does not vouch
    for (here a function that would run a shell command) is refused, not built."""
    import os
    import shutil

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    from studio.runs.folder import RunDir

    job, _ = trained
    copy = tmp_path / "copied-run"
    shutil.copytree(job.run.path, copy, ignore=shutil.ignore_patterns("checkpoints", "exports"))
    skops.io.dump(FunctionTransformer(func=os.system), copy / "classic.skops")
    with pytest.raises(StudioError, match="types the studio does not load"):
        RunDir(copy).load_classic()


def test_saved_run_matches_the_model_in_memory(trained):
    job, _ = trained
    loaded = load_run_model(job.run)
    p = job.prepared
    texts = list(p.split.val_a["text"])
    mem = LabelScorer(job.model, job.tokenizer, p.codes, p.rubric, p.prompt_format).score(texts).probs
    disk = LabelScorer(loaded[0], loaded[1], p.codes, p.rubric, p.prompt_format).score(texts).probs
    assert np.abs(mem - disk).max() < 1e-4


def test_threshold_is_saved_and_used_by_predict(trained, tmp_path):
    job, _ = trained
    loaded = load_run_model(job.run)
    inputs = pd.DataFrame({"message": ["rules glue paint lathe", "", "project drill bread", None,
                                       "rules solder garden"], "id": [1, 2, 3, 4, 5]})
    src = tmp_path / "new_posts.jsonl"
    inputs.to_json(src, orient="records", lines=True)
    out = predict_file(job.run.path, src, tmp_path / "pred.csv", loaded=loaded).preview
    assert len(out) == len(inputs) == len(pd.read_csv(tmp_path / "pred.csv"))
    assert list(out["id"]) == ["1", "2", "3", "4", "5"]  # input columns come back as read
    assert out.loc[[1, 3], "predicted_label"].isna().all() and out.loc[1, "note"].startswith("empty text")
    filled = out.dropna(subset=["predicted_label"])
    assert np.allclose(filled["p_Other"] + filled["p_Rules Question"], 1.0, atol=1e-3)
    assert list(filled["predicted_code"]) == ["R", "O", "R"]
    job.run.set_threshold(0.9999999)  # almost nothing reaches it: the minority vanishes
    strict = predict_file(job.run.path, src, tmp_path / "strict.csv", loaded=loaded).preview
    assert (strict["predicted_label"].dropna() == "Other").all()
    assert json.loads((job.run.adapter / "studio.json").read_text())["threshold"] == 0.9999999
    _, report = evaluate_run(job.run.path, untrained=False, loaded=loaded)
    assert report["threshold"] == 0.9999999 and report["val_a"]["minority_recall"] == 0.0
    job.run.set_threshold(None)
    with pytest.raises(StudioError, match="between 0 and 1"):
        job.run.set_threshold(1.5)


def test_predictions_csv_opens_safely_in_a_spreadsheet(trained, tmp_path):
    """A text that starts like a formula comes back with a leading apostrophe in the CSV, so a spreadsheet shows it
    rather than running it; what the program returns keeps the text as it was."""
    job, _ = trained
    src = tmp_path / "posts.csv"
    pd.DataFrame({"text": ["=HYPERLINK(\"http://evil\",\"click\")", "rules glue paint"], "id": [1, 2]}).to_csv(
        src, index=False)
    out = predict_file(job.run.path, src, tmp_path / "pred.csv", loaded=load_run_model(job.run)).preview
    assert out["text"][0].startswith("=")
    written = pd.read_csv(tmp_path / "pred.csv")
    assert written["text"][0] == "'=HYPERLINK(\"http://evil\",\"click\")" and written["text"][1] == "rules glue paint"


def test_eval_on_a_separate_file_and_unknown_labels(trained, tmp_path):
    job, _ = trained
    loaded = load_run_model(job.run)
    other = tmp_path / "holdout.csv"
    other.write_text("text,label\n" + "\n".join([f"rules glue {i},Rules Question" for i in range(4)] +
                                                 [f"project paint {i},Other" for i in range(12)]))
    _, report = evaluate_run(job.run.path, data=str(other), untrained=False, loaded=loaded)
    assert report["val_a"]["n"] == 16 and report["val_b"]["n"] == 0  # a test set: scored once, no Val B drawn
    assert report["chosen"]["val_b"]["n"] == 0
    # The file scored is named as itself, never "Val A" nor "cross-fitted": in the verdicts, the table and the
    # calibration note; no Val B line.
    said = "\n".join(summary_lines(report))
    assert "Val A" not in said.replace("its Val A", "").replace("own Val A", ""), said
    assert "Val B" not in said and "cross-fitted" not in said, said
    assert "holdout.csv (test set)" in said and "16 holdout.csv rows" in said
    assert report["calibration"]["on"] == "holdout.csv"
    assert "nothing fitted on these rows" in report["calibration"]["fitted_on"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n" + "\n".join([f"x {i},Spam" for i in range(4)] + [f"y {i},Other" for i in
                                                                                    range(4)]))
    with pytest.raises(StudioError, match="not trained on: 'Spam'"):
        evaluate_run(job.run.path, data=str(bad), loaded=loaded)


def test_a_labelled_file_predicted_is_a_test_set(trained, tmp_path):
    """Batch predict on a file with the run's label column gives its figures from the same predictions (each text
    scored once): rows with a label the run does not know, or none, are left out and counted."""
    from studio.door.predict import Predicted

    job, _ = trained
    rows = [(f"rules glue {i}", "Rules Question") for i in range(5)] + [(f"project paint {i}", "Other")
                                                                         for i in range(12)]
    rows += [("rules lathe 99", "Spam"), ("project glue 98", "")]
    src = tmp_path / "labelled.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(src, index=False)
    written = predict_file(job.run.path, src, tmp_path / "out.csv", loaded=load_run_model(job.run))
    out = pd.read_csv(tmp_path / "out.csv")
    known = out[out["label"].isin(["Rules Question", "Other"])]
    expected = set_metrics(list(known["label"]), list(known["predicted_label"]), ["Other", "Rules Question"],
                           "Rules Question")
    test = written.test
    assert test["n"] == 17 and test["unknown_labels"] == 1 and test["column"] == "label"
    assert test["macro_f1"] == expected["macro_f1"] and test["minority_recall"] == expected["minority_recall"]
    words = "\n".join(Predicted(written).lines())
    assert "it is a test set: on its 17 rows" in words and "1 rows with labels the run does not know" in words
    unlabelled = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["rules glue 1", "project paint 2"]}).to_csv(unlabelled, index=False)
    assert predict_file(job.run.path, unlabelled, tmp_path / "out2.csv", loaded=load_run_model(job.run)).test is None


def test_eval_refused_without_adapter(tmp_path):
    run = RunDir.create(tmp_path, "empty")
    run.update_record(RunConfig())
    with pytest.raises(StudioError, match="has no saved adapter"):
        evaluate_run(run.path)


class LegacyCacheModel(__import__("torch").nn.Module):
    """A model that returns past_key_values as legacy tuples, as Unsloth's patched forward does."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    @property
    def device(self):
        return self.inner.device

    def forward(self, *args, past_key_values=None, **kwargs):
        if isinstance(past_key_values, tuple):
            raise AssertionError("the scorer fed a legacy tuple back into the model")
        out = self.inner(*args, past_key_values=past_key_values, **kwargs)
        if out.past_key_values is not None:
            out.past_key_values = tuple((layer.keys, layer.values) for layer in out.past_key_values.layers)
        return out


def test_models_returning_legacy_caches_score_the_same(trained):
    job, _ = trained
    p = job.prepared
    texts = list(p.split.val_a["text"])[:12]
    for codes in (p.codes, {"Other": "Oth", "Rules Question": "RQX"}):
        normal = LabelScorer(job.model, job.tokenizer, codes, p.rubric, p.prompt_format, batch_size=5)
        legacy = LabelScorer(LegacyCacheModel(job.model), job.tokenizer, codes, p.rubric, p.prompt_format,
                             batch_size=5)
        assert np.abs(normal.score(texts).probs - legacy.score(texts).probs).max() < 1e-4
        assert legacy._cache_ok is False  # it noticed, and scored without reusing the cache
        if legacy.tree.nodes:  # multi-token codes: the tree in one whole pass, checked against a pass per path
            assert legacy.tree_ok is True and legacy.tree_gap < 1e-3
            import torch  # (as the legacy model above: torch only where a test runs a model by hand)

            fast = LabelScorer(LegacyCacheModel(job.model), job.tokenizer, codes, p.rubric, p.prompt_format,
                               batch_size=5, autocast=torch.bfloat16)  # the CPU's compute: the mask in its dtype
            fast.score(texts)
            assert fast.tree_ok is True, fast.tree_gap
