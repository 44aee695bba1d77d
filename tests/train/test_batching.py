"""The training rows' order: every micro-batch holds every class in its share, each class at one length quantile; the
trainer draws its batches that way."""

import numpy as np
from conftest import toy_config

from studio.data.order import class_slots, stratified_order
from studio.train.batching import StratifiedLengthSampler


def padding_share(order, lengths, size):
    """Real tokens over padded tokens, for micro-batches of ``size`` consecutive rows of ``order``."""
    batches = [np.array(order[s:s + size]) for s in range(0, len(order), size)]
    return sum(lengths[b].sum() for b in batches) / sum(len(b) * lengths[b].max() for b in batches)


def test_every_stretch_of_slots_holds_each_class_in_its_share():
    slots = class_slots([60, 30, 10])
    assert list(np.bincount(slots)) == [60, 30, 10]
    for start in range(0, 100, 10):
        assert list(np.bincount(slots[start:start + 10], minlength=3)) == [6, 3, 1]


def test_micro_batches_mix_the_classes_where_length_follows_the_class():
    rng = np.random.default_rng(0)
    classes = np.array([0] * 600 + [1] * 300 + [2] * 100)
    lengths = rng.integers(40, 90, 1000) + np.where(classes == 2, 120, 0)  # class 2 is long, like plot summaries
    order = stratified_order(lengths, classes, 16, seed=1)
    assert sorted(order) == list(range(1000))  # every row once
    for s in range(0, 992, 16):
        counts = np.bincount(classes[order[s:s + 16]], minlength=3)
        assert all(abs(counts - np.array([9.6, 4.8, 1.6])) < 1.5), counts
    # sorting by length alone builds batches of the long class only
    by_length = list(np.argsort(lengths))
    assert any(len(set(classes[by_length[s:s + 16]])) == 1 and classes[by_length[s]] == 2 for s in range(0, 992, 16))


def test_where_the_classes_are_alike_in_length_batches_pad_almost_as_little_as_sorting():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, 2000)
    lengths = rng.lognormal(4, 0.5, 2000).astype(int) + 10
    stratified = padding_share(stratified_order(lengths, classes, 16, seed=1), lengths, 16)
    random = padding_share(list(rng.permutation(2000)), lengths, 16)
    assert stratified > 0.85 and stratified > random + 0.25, (stratified, random)


def test_the_step_that_holds_the_longest_row_comes_first():
    """Memory peaks at the first step (later, narrower steps reuse it) and a run that does not fit fails at once."""
    rng = np.random.default_rng(0)
    lengths, classes = rng.integers(10, 100, 320), rng.integers(0, 2, 320)
    lengths[123] = 400
    for micro_batch, step_rows, seed in ((8, 8, 2), (8, 8, 3), (4, 16, 2)):
        order = stratified_order(lengths, classes, micro_batch, seed=seed, step_rows=step_rows)
        assert sorted(order) == list(range(320))  # every row once
        assert 123 in order[:step_rows]  # in the first optimizer step (its rows sorted by length: the last micro-batch)


def test_the_order_is_the_same_for_a_seed_and_epoch_and_new_each_epoch():
    rng = np.random.default_rng(0)
    lengths, classes = rng.integers(10, 100, 300), rng.integers(0, 2, 300)
    sampler = StratifiedLengthSampler(lengths, classes, 8, seed=5)
    first = list(sampler)
    assert first == list(StratifiedLengthSampler(lengths, classes, 8, seed=5)) and len(sampler) == 300
    sampler.set_epoch(1)
    assert sorted(list(sampler)) == sorted(first) and list(sampler) != first


def test_the_trainer_draws_class_stratified_batches(tiny_model_dir, toy_csv, tmp_path):
    from transformers import TrainerCallback

    from studio.train.worker import start_training

    seen = {}

    class Sampler(TrainerCallback):
        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            batch_sampler = getattr(train_dataloader, "batch_sampler", None)
            seen["sampler"] = getattr(batch_sampler, "sampler", None) or train_dataloader.sampler
            seen["batches"] = [len(b) for b in batch_sampler] if batch_sampler is not None else None

    job = start_training(toy_config(tiny_model_dir, toy_csv, max_steps=2), tmp_path, callbacks=[Sampler()])
    assert job.wait(120) and job.state == "finished", job.error
    sampler, prepared = seen["sampler"], job.prepared
    assert isinstance(sampler, StratifiedLengthSampler) and sampler.micro_batch == 8
    assert sampler.classes == [prepared.labels.index(lb) for lb in prepared.train["label"]]
    order, classes = list(sampler), np.array(sampler.classes)
    minority = prepared.labels.index(prepared.table.minority_label)
    share = float(np.mean(classes == minority))
    for s in range(0, len(order) - 7, 8):  # every full micro-batch holds the minority class in its share
        assert abs(np.sum(classes[order[s:s + 8]] == minority) - 8 * share) < 1.5


def test_within_a_step_the_longer_class_shares_micro_batches_and_the_recipe_weighs_the_cost():
    from studio.config import RunConfig
    from studio.data.order import cost_per_row
    from studio.estimate.recipe import resolve

    rng = np.random.default_rng(0)
    classes = np.array([0] * 800 + [1] * 200)
    lengths = rng.integers(60, 90, 1000) + np.where(classes == 1, 100, 0)
    order = stratified_order(lengths, classes, 4, seed=2, step_rows=16)
    for s in range(0, 992, 16):
        step = order[s:s + 16]
        assert np.bincount(classes[step], minlength=2).tolist() in ([13, 3], [12, 4], [14, 2])
        assert list(lengths[step]) == sorted(lengths[step])  # the long class's rows end up together
    small, large = cost_per_row(lengths, classes, 4, 16), cost_per_row(lengths, classes, 16, 16)
    assert small < large  # 4 rows a micro-batch pad less than they lose to the micro-step's fixed cost
    alike = rng.integers(60, 90, 1000)
    assert cost_per_row(alike, classes, 16, 16) < cost_per_row(alike, classes, 4, 16)

    def cost(micro_batch, step_rows):
        return cost_per_row(lengths, classes, micro_batch, step_rows)

    out = resolve(RunConfig(), device="cpu", params=135_000_000, fits=lambda b, m, four_bit: 0.1, cost=cost)
    t = out.config.train
    assert t.per_device_train_batch_size < 16 and t.per_device_train_batch_size * t.gradient_accumulation_steps == 16
    assert "padding" in out.choices[1]
    same = resolve(RunConfig(), device="cpu", params=135_000_000, fits=lambda b, m, four_bit: 0.1,
                   cost=lambda b, s: cost_per_row(alike, classes, b, s))
    assert same.config.train.per_device_train_batch_size == 16
