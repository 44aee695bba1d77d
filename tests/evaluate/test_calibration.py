"""Prior correction, temperature scaling, ECE and the held-out threshold against hand-computed values; the classic
and majority baselines on exactly the run's split."""

import numpy as np
import pandas as pd
import pytest

from studio.classifier.calibration import fit_temperature, prior_correct, reliability, with_temperature
from studio.classifier.choice import cross_fitted
from studio.classifier.rules import Sources, Task, best_threshold, fit_rule


def test_prior_correction_by_hand():
    # Trained on 50/50, used where the classes are 90/10: a coin flip becomes 90/10.
    assert np.allclose(prior_correct(np.array([[0.5, 0.5]]), [0.5, 0.5], [0.9, 0.1]), [[0.9, 0.1]])
    # 70/30 training mix: w = (0.9/0.7, 0.1/0.3); [0.3·1.2857, 0.7·0.3333] = [0.3857, 0.2333] → [0.6231, 0.3769]
    out = prior_correct(np.array([[0.3, 0.7]]), [0.7, 0.3], [0.9, 0.1])
    assert np.allclose(out, [[0.3857142857 / 0.6190476190, 0.2333333333 / 0.6190476190]])
    same = np.array([[0.2, 0.3, 0.5]])
    assert np.allclose(prior_correct(same, [0.2, 0.3, 0.5], [0.2, 0.3, 0.5]), same)  # no shift, no change


def test_temperature_by_hand_and_recovered_from_data():
    # T = 2 takes square roots: [√0.8, √0.2] / (√0.8 + √0.2) = [2/3, 1/3]
    assert np.allclose(with_temperature(np.array([[0.8, 0.2]]), 2.0), [[2 / 3, 1 / 3]])
    assert np.allclose(with_temperature(np.array([[0.8, 0.2]]), 1.0), [[0.8, 0.2]])
    # Labels drawn from softmax(z / 2) while the model says softmax(z): the fitted temperature is about 2.
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, size=(20000, 3))
    true = np.exp(z / 2) / np.exp(z / 2).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in true])
    model = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert abs(fit_temperature(model, y) - 2.0) < 0.1
    task = Task(natural=[1 / 3] * 3, llm_train=[1 / 3] * 3, classic_train=[1 / 3] * 3, minority=0)
    rule = fit_rule("llm", Sources(model, None), y, task)  # the temperature helps on held-out halves: it is kept
    assert abs(rule.temperature - 2.0) < 0.15 and rule.prior_strength == 0.0
    calibrated = cross_fitted("llm", Sources(model, None), y, task).probs  # each half by the other half's rule
    assert reliability(calibrated, y)["ece"] < reliability(model, y)["ece"] / 3
    assert (calibrated.argmax(axis=1) == model.argmax(axis=1)).all()  # calibration never changes the decision
    # All right on the fitting rows: no best temperature exists, so none is applied.
    assert fit_temperature(np.array([[0.6, 0.4], [0.3, 0.7]]), np.array([0, 1])) == 1.0


def test_expected_calibration_error_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.5; bin (0.5, 0.6]: confidence 0.6, accuracy 1.0; each half the rows
    result = reliability(probs, y)
    assert result["ece"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert [(b["confidence"], b["accuracy"], b["count"]) for b in result["bins"]] == [(0.6, 1.0, 2), (0.9, 0.5, 2)]


def test_threshold_is_chosen_on_held_out_rows():
    scores = np.array([0.1, 0.2, 0.35, 0.4, 0.7, 0.8])
    positive = np.array([False, False, True, False, True, True])
    # t = 0.35: 3 of 3 found, 1 false alarm (minority F1 0.857, macro-F1 0.829); t = 0.7: 2 of 3, none (0.8, 0.829):
    # the same macro-F1, the lower threshold first
    assert best_threshold(scores, positive) == pytest.approx(0.35)
    assert best_threshold(scores, np.zeros(6, dtype=bool)) is None


def test_classic_and_majority_baselines_use_the_runs_split(tmp_path):
    from studio.config import DataRecipe
    from studio.data.prepare import prepare_data
    from studio.evaluate import baselines

    rows = [(f"refund please order {i}", "Billing") for i in range(30)] + \
           [(f"app crashes on start {i}", "Bug") for i in range(90)]
    path = tmp_path / "tickets.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    prepared = prepare_data(DataRecipe(path=str(path), balance="50/50"))
    sets = {"val_a": prepared.split.val_a, "val_b": prepared.split.val_b}
    result = baselines.baselines(prepared.split.train, sets, prepared.labels, "Billing")
    assert result["train_rows"] == len(prepared.split.train) < len(prepared.train)  # before oversampling
    assert result["classic"]["val_a"]["n"] == len(prepared.split.val_a)
    assert result["classic"]["val_a"]["macro_f1"] == 1.0  # the words give the label away
    assert result["majority_label"] == "Bug" and result["majority"]["val_a"]["minority_recall"] == 0.0
    assert result["majority"]["val_a"]["accuracy"] == pytest.approx(
        (prepared.split.val_a["label"] == "Bug").mean())
