"""Split invariants (stratification, no leakage, Val B balance, determinism) and balancing ratios."""

import pandas as pd
import pytest

from studio.data.split import balance_train, class_counts, split_table
from studio.errors import StudioError


def make_frame(counts: dict[str, int]) -> pd.DataFrame:
    rows, n = [], 0
    for label, count in counts.items():
        for i in range(count):
            n += 1
            rows.append({"text": f"{label} example {i}", "label": label, "row": n + 1})
    return pd.DataFrame(rows)


@pytest.fixture
def frame_90_10():
    return make_frame({"O": 900, "RQ": 100})


def test_val_a_keeps_the_natural_ratio(frame_90_10):
    split = split_table(frame_90_10, val_fraction=0.2, seed=1)
    assert class_counts(split.val_a) == {"O": 180, "RQ": 20}


def test_no_row_in_two_sets_and_nothing_lost(frame_90_10):
    split = split_table(frame_90_10, val_fraction=0.15, seed=7)
    sets = [set(split.train["text"]), set(split.val_a["text"]), set(split.val_b["text"])]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(split.train) + len(split.val_a) + len(split.val_b) == len(frame_90_10)


def test_val_b_is_balanced_and_auto_sized(frame_90_10):
    split = split_table(frame_90_10, val_fraction=0.15, seed=7)
    assert class_counts(split.val_b) == {"O": 15, "RQ": 15}  # the minority's Val A size
    explicit = split_table(frame_90_10, val_fraction=0.15, val_b_per_class=40, seed=7)
    assert class_counts(explicit.val_b) == {"O": 40, "RQ": 40}


def test_val_b_shrinks_with_a_warning_when_the_minority_is_small():
    split = split_table(make_frame({"A": 50, "B": 5}), val_fraction=0.2, val_b_per_class=10, seed=0)
    assert class_counts(split.val_b) == {"A": 3, "B": 3}
    assert class_counts(split.train)["B"] == 1
    assert any("Val B has 3 rows per class instead of 10" in w for w in split.warnings)


def test_split_is_seeded(frame_90_10):
    a = split_table(frame_90_10, seed=3)
    b = split_table(frame_90_10, seed=3)
    c = split_table(frame_90_10, seed=4)
    assert a.val_a["text"].tolist() == b.val_a["text"].tolist()
    assert a.val_a["text"].tolist() != c.val_a["text"].tolist()


def test_conflicting_duplicates_stay_in_one_set():
    frame = make_frame({"A": 40, "B": 40})
    clones = pd.DataFrame([{"text": f"A example {i}", "label": "B", "row": 1000 + i} for i in range(10)])
    frame = pd.concat([frame, clones], ignore_index=True)
    split = split_table(frame, val_fraction=0.3, seed=5)
    for i in range(10):
        homes = [name for name, part in (("train", split.train), ("a", split.val_a), ("b", split.val_b))
                 if (part["text"] == f"A example {i}").any()]
        assert len(homes) == 1


def test_multiclass_stratification():
    split = split_table(make_frame({"A": 300, "B": 150, "C": 50}), val_fraction=0.1, seed=0)
    assert class_counts(split.val_a) == {"A": 30, "B": 15, "C": 5}
    assert class_counts(split.val_b) == {"A": 5, "B": 5, "C": 5}


@pytest.mark.parametrize("balance,share,expected_min", [("70/30", 0.3, 386), ("50/50", 0.5, 900),
                                                       ("custom", 0.4, 600)])
def test_oversampling_ratios(balance, share, expected_min):
    train = make_frame({"O": 900, "RQ": 100})
    out = balance_train(train, balance=balance, minority_share=share, seed=0)
    counts = class_counts(out)
    assert counts["O"] == 900 and counts["RQ"] == expected_min  # ceil(900 * share / (1 - share))
    assert set(train["text"]) == set(out["text"])  # every original row is still there
    repeats = out[out["label"] == "RQ"]["text"].value_counts()
    assert repeats.max() - repeats.min() <= 1  # copies spread evenly over the minority rows


def test_natural_keeps_counts_and_shuffles():
    train = make_frame({"O": 90, "RQ": 10})
    out = balance_train(train, balance="natural", seed=0)
    assert class_counts(out) == {"O": 90, "RQ": 10}
    assert out["text"].tolist() != train["text"].tolist()


def test_undersampling_the_majority():
    out = balance_train(make_frame({"O": 900, "RQ": 100}), balance="50/50", undersample_majority=True, seed=0)
    assert class_counts(out) == {"O": 100, "RQ": 100}


def test_balancing_is_seeded():
    train = make_frame({"O": 90, "RQ": 10})
    a = balance_train(train, balance="50/50", seed=1)["text"].tolist()
    assert a == balance_train(train, balance="50/50", seed=1)["text"].tolist()
    assert a != balance_train(train, balance="50/50", seed=2)["text"].tolist()


def test_already_balanced_data_is_untouched_by_70_30():
    out = balance_train(make_frame({"A": 50, "B": 45}), balance="70/30", seed=0)
    assert class_counts(out) == {"A": 50, "B": 45}


@pytest.mark.parametrize("kwargs,match", [({"balance": "60/40"}, "balance must be one of"),
                                          ({"balance": "custom", "minority_share": 0.8}, "at most 0.5")])
def test_bad_balance_settings(kwargs, match):
    with pytest.raises(StudioError, match=match):
        balance_train(make_frame({"A": 5, "B": 5}), **kwargs)


def test_bad_val_fraction():
    with pytest.raises(StudioError, match="val_fraction"):
        split_table(make_frame({"A": 5, "B": 5}), val_fraction=0.95)
