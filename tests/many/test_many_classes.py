"""Many classes (#41): the label column judged by rows per class, codes that scale (unique, at most 3 tokens, one
pass to score), a rubric whose cost does not grow with the class count, the prefix tree read in one pass, the
out-of-scope class and its reject rule, and the views of a 150-class evaluation."""

import numpy as np
import pandas as pd
import pytest
import torch

from studio.classifier.rules import Rule, Sources, Task, best_reject, fit_rule
from studio.classifier.scoring import LabelScorer
from studio.data.formatting import training_ids
from studio.data.labels import (MAX_CODE_TOKENS, code_token_ids, default_rubric, out_of_scope_label, suggest_codes,
                                validate_codes)
from studio.data.table import load_table
from studio.errors import StudioError
from studio.evaluate.metrics import confused_pairs, scope_metrics, set_metrics, worst_classes

# Intent names shaped like CLINC150's: shared first words ('change_', 'card_'), several words, a digit.
STEMS = ["change", "card", "credit", "what", "how", "book", "order", "report", "pto", "restaurant", "todo", "bill"]
TAILS = ["language", "speed", "accent", "volume", "name", "arrival", "acceptance", "declined", "limit", "score",
         "is_your_name", "old_are_you", "flight", "hotel", "status", "lost", "request", "balance", "due", "list",
         "update", "reviews", "suggestion", "w2", "401k"]
INTENTS = sorted({f"{s}_{t}" for s in STEMS for t in TAILS})[:150] + ["oos"]


def test_a_label_column_is_judged_by_rows_per_class(tmp_path):
    rows = [(f"request number {i} about {lb.replace('_', ' ')}", lb) for lb in INTENTS for i in range(3)]
    path = tmp_path / "intents.csv"
    pd.DataFrame(rows, columns=["text", "intent"]).to_csv(path, index=False)
    assert len(load_table(path).classes) == 151  # 151 classes of 3 rows each: labels, no flag needed
    with pytest.raises(StudioError, match="151 classes, more than the 100 allowed"):
        load_table(path, max_classes=100)
    ids = tmp_path / "ids.csv"  # mostly one-row values: still a text or ID column, with today's words
    pd.DataFrame({"text": [f"t {i}" for i in range(400)], "label": [f"id-{i // 2 if i < 20 else i}"
                                                                    for i in range(400)]}).to_csv(ids, index=False)
    with pytest.raises(StudioError, match="390 distinct values in 400 rows, 380 of them on a single row: that looks "
                                          "like a text or ID column"):
        load_table(ids)


def test_codes_scale_unique_and_short_for_any_count(tiny_tokenizer):
    codes = suggest_codes(INTENTS, tiny_tokenizer)  # it raised at 151 ('change_language', 'change_speed': 'CHAN')
    assert validate_codes(codes, INTENTS) == codes
    assert len({c.lower() for c in codes.values()}) == len(INTENTS)
    assert max(len(code_token_ids(tiny_tokenizer, c)) for c in codes.values()) <= MAX_CODE_TOKENS
    named = ["change_language", "change_speed", "card_arrival", "card_acceptance"] + [f"topic_{w}" for w in (
        "rules", "selling", "links", "spam", "help", "post", "question", "other", "forum", "thread", "reply", "user",
        "account", "ban")]
    codes = suggest_codes(named, tiny_tokenizer)  # each label's telling word, where the tokenizer keeps it short
    assert len({c.lower() for c in codes.values()}) == len(named)
    from_words = [lb for lb, c in codes.items() if c.lower() in lb.lower().replace("_", "")]
    assert len(from_words) >= len(named) // 2, codes
    assert codes["topic_rules"].lower() == "rules" and codes["change_speed"].lower() != codes["change_language"]
    for n in (17, 400, 1000):  # many labels without telling words: spare codes, still unique and short
        labels = [f"class {i}" for i in range(n)]
        codes = suggest_codes(labels, tiny_tokenizer)
        assert len({c.lower() for c in codes.values()}) == n
        assert max(len(code_token_ids(tiny_tokenizer, c)) for c in codes.values()) <= MAX_CODE_TOKENS
    few = suggest_codes(["Rules Question", "Other"], tiny_tokenizer)  # a handful keep the guide's letters
    assert few == {"Rules Question": "RQ", "Other": "O"}


def test_a_rows_cost_does_not_grow_with_the_class_count(tiny_tokenizer):
    def tokens_per_row(labels):
        codes = suggest_codes(labels, tiny_tokenizer)
        ids, _ = training_ids(tiny_tokenizer, default_rubric(codes), "how do I say hello in french",
                              codes[labels[0]], "chat")
        return len(ids)

    six, many = tokens_per_row(INTENTS[:6]), tokens_per_row(INTENTS)
    assert many <= 2 * six, (six, many)  # the listing rubric took 1,190 tokens at 151 classes
    assert "change_language" not in default_rubric(suggest_codes(INTENTS, tiny_tokenizer))
    assert "- " in default_rubric(suggest_codes(INTENTS[:6], tiny_tokenizer))  # a handful: every code named


def _brute_force(model, tokenizer, scorer, texts):
    """Each code's summed log-probability from a full pass over prompt + code, no cache, no tree."""
    out = np.zeros((len(texts), len(scorer.labels)))
    for i, text in enumerate(texts):
        prompt = scorer.prompt_ids(text)
        for k, code in enumerate(scorer.code_ids):
            ids = torch.tensor([prompt + code])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            out[i, k] = sum(logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(code))
    return out


def test_the_prefix_tree_scores_every_code_in_one_pass(tiny_model_dir, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    labels = INTENTS[:40]
    codes = {lb: f"{lb.split('_')[0]}{i}" for i, lb in enumerate(labels)}  # shared leading tokens, several each
    texts = ["change the language to french", "my card was declined", "book a hotel in rome", "hi", "what is up"]
    for reuse in (True, False):
        scorer = LabelScorer(model, tiny_tokenizer, codes, default_rubric(codes), "chat", batch_size=8,
                             reuse_prefix=reuse)
        assert scorer.tree.nodes and len(scorer.code_paths) > 2
        with torch.inference_mode():
            expected = _brute_force(model, tiny_tokenizer, scorer, texts)
        got = scorer.score(texts).logprobs
        assert scorer.tree_ok is True
        np.testing.assert_allclose(got, expected, atol=2e-4)
        calls = []
        hook = model.register_forward_pre_hook(lambda *a: calls.append(1))
        try:
            again = scorer.score(texts).logprobs  # checked once: from now on one pass for the rows, one for the tree
        finally:
            hook.remove()
        assert len(calls) == 2, len(calls)
        np.testing.assert_allclose(again, expected, atol=2e-4)


def test_the_out_of_scope_class_is_recognised_or_named():
    assert out_of_scope_label(INTENTS) == "oos"
    assert out_of_scope_label(["spam", "other"]) is None  # two classes: "other" is simply the second one
    assert out_of_scope_label(["a", "b", "Other"]) == "Other"
    assert out_of_scope_label(INTENTS, "off") is None
    assert out_of_scope_label(INTENTS, "change_speed") == "change_speed"
    with pytest.raises(StudioError, match="'nothing' is not one of the labels"):
        out_of_scope_label(INTENTS, "nothing")


def _intent_probs(rng, n_in, n_out, classes):
    """In-scope rows: their class likely; out-of-scope rows (class 0): a flat spread with no class standing out."""
    y = np.concatenate([rng.integers(1, classes, n_in), np.zeros(n_out, dtype=int)])
    logits = rng.normal(0, 1, (len(y), classes))
    logits[np.arange(n_in), y[:n_in]] += 4.0
    logits[:, 0] -= 3.0  # the model rarely answers out of scope by itself (CLINC150: 100 of 15,100 rows)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, y


def test_the_reject_rule_catches_out_of_scope_within_its_budget():
    rng = np.random.default_rng(0)
    probs, y = _intent_probs(rng, 600, 60, 30)
    cut = best_reject(probs, y, reject=0)
    assert cut is not None
    plain, rejected = probs.argmax(axis=1), Rule("llm", reject_below=cut).decide(probs, 1, reject=0)
    inside = y != 0
    assert np.mean(rejected[~inside] == 0) > np.mean(plain[~inside] == 0) + 0.3  # far more caught
    assert np.mean(rejected[inside] == y[inside]) >= np.mean(plain[inside] == y[inside]) - 0.0101
    task = Task(natural=[1 / 30] * 30, llm_train=[1 / 30] * 30, classic_train=[1 / 30] * 30, minority=1, reject=0)
    rule = fit_rule("classic", Sources(None, probs), y, task)
    assert rule.reject_below is not None and "out of scope when no class reaches" in rule.words()
    assert Rule.from_dict(rule.to_dict()).reject_below == rule.reject_below  # kept with the run's decision
    no_scope = Task(natural=[1 / 30] * 30, llm_train=[1 / 30] * 30, classic_train=[1 / 30] * 30, minority=1)
    assert fit_rule("classic", Sources(None, probs), y, no_scope).reject_below is None


def test_scope_metrics_and_the_views_of_many_classes():
    truth = ["a", "a", "b", "oos", "oos", "oos", "b"]
    pred = ["a", "oos", "b", "oos", "a", "oos", "a"]
    scope = scope_metrics(truth, pred, "oos")
    assert scope["in_scope_accuracy"] == pytest.approx(2 / 4) and scope["recall"] == pytest.approx(2 / 3)
    assert scope["precision"] == pytest.approx(2 / 3)
    metrics = set_metrics(truth, pred, ["a", "b", "oos"], "b", "oos")
    assert metrics["out_of_scope"] == scope
    pairs = confused_pairs(metrics)
    assert pairs[0] == {"true": "oos", "predicted": "a", "rows": 1, "share": 0.333} or pairs[0]["rows"] == 1
    assert {(p["true"], p["predicted"]) for p in pairs} == {("a", "oos"), ("oos", "a"), ("b", "a")}
    assert worst_classes(metrics, 1) == ["b"] or worst_classes(metrics, 1) == ["a"]


# ---- end to end: a 24-class run with an "other" class through every face --------------------------------------
TOPICS = ["rules", "selling", "links", "glue", "paint", "lathe", "drill", "garden", "bread", "printer", "solder",
          "forum", "thread", "reply", "account", "ban", "spam", "help", "post", "question", "photo", "music", "boat"]


def many_rows(per_class: int, seed: int) -> list[tuple[str, str]]:
    """A learnable 24-class task: the first word gives the topic away; 'other' rows start with filler words."""
    rng = np.random.default_rng(seed)
    rows = [(f"{t} " + " ".join(rng.choice(TOPICS, 4)) + f" {seed}{i}", f"topic_{t}")
            for t in TOPICS for i in range(per_class)]
    rows += [(f"the and of {' '.join(rng.choice(TOPICS, 3))} {seed}{i}", "other") for i in range(per_class)]
    return rows


@pytest.fixture(scope="module")
def many_run(tiny_model_dir, tmp_path_factory):
    from conftest import toy_config

    from studio.door.evaluation import evaluate
    from studio.train.worker import start_training

    folder = tmp_path_factory.mktemp("many")
    pd.DataFrame(many_rows(14, 1), columns=["text", "label"]).to_csv(folder / "topics.csv", index=False)
    config = toy_config(tiny_model_dir, folder / "topics.csv", max_steps=30).replace({"data": {"rubric": ""}})
    job = start_training(config, folder / "runs")
    assert job.wait(300) and job.state == "finished", job.error
    evaluated = evaluate(job.run.path, folder / "runs", log=lambda m: None)
    return job.run, folder, evaluated


def test_a_many_class_run_trains_evaluates_and_explains(many_run):
    run, folder, evaluated = many_run
    report = evaluated.report
    assert len(report["labels"]) == 24 and report["chosen"]["name"] in ("llm", "classic", "blend")
    assert len(run.config().data.label_codes) == 24
    for on in ("val_a", "val_b"):  # the intent set's own questions, beside macro-F1, for every candidate
        scope = report["chosen"][on]["out_of_scope"]
        assert scope["label"] == "other" and scope["out_of_scope"] >= 1 and scope["in_scope_accuracy"] is not None
        assert all("out_of_scope" in c[on] for c in report["candidates"].values())
    assert report["chosen"]["rule"].get("reject_below", "absent") != "absent"  # the reject rule is part of the rule
    text = "\n".join(evaluated.lines())
    assert "Most confused pairs" in text or "Lowest F1" in text
    assert "out-of-scope recall ('other')" in evaluated.markdown()
    assert len(evaluated.confused_pairs(evaluated.figures(report, "val_a"), top=5)) <= 5


def test_a_many_class_classifier_predicts_serves_and_bundles(many_run, tmp_path):
    from fastapi.testclient import TestClient

    from studio import Classifier
    from studio.door.export import export
    from studio.serve.app import build_app
    from studio.serve.server import load_classifier

    run, folder, _ = many_run
    texts = ["glue paint lathe drill", "the and of music boat", "printer solder bread"]
    expected = Classifier.load(run.path).predict(texts)
    assert all(len(e["probabilities"]) == 24 and abs(sum(e["probabilities"].values()) - 1) < 1e-3 for e in expected)
    with TestClient(build_app(load_classifier(run.path, log=lambda m: None))) as client:
        body = client.post("/v1/classify", json={"texts": texts}).json()
    assert [r["label"] for r in body["results"]] == [e["label"] for e in expected]
    exported = export(run.path, "classifier", tmp_path / "bundle", folder / "runs", overwrite=True, log=lambda m: None)
    assert exported.result.passed and exported.result.agreement == 1.0, exported.result.to_dict()
    got = Classifier.load(exported.result.path).predict(texts)
    assert [g["label"] for g in got] == [e["label"] for e in expected]


def test_a_code_that_begins_another_is_scored_as_itself(tiny_model_dir, tiny_tokenizer):
    """'1' and '12': the probability of answering '1' and stopping, not of every answer starting with '1'."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    labels = [f"class {i}" for i in range(1, 21)]
    codes = {lb: str(i) for i, lb in enumerate(labels, start=1)}
    scorer = LabelScorer(model, tiny_tokenizer, codes, default_rubric(codes), "chat", batch_size=8)
    one, twelve = scorer.code_ids[0], scorer.code_ids[11]
    assert twelve[:len(one) - 1] == one[:-1] and len(one) == len(code_token_ids(tiny_tokenizer, "1")) + 1
    texts = ["some text", "another one"]
    with torch.inference_mode():
        np.testing.assert_allclose(scorer.score(texts).logprobs, _brute_force(model, tiny_tokenizer, scorer, texts),
                                   atol=2e-4)
