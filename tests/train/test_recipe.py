"""The auto recipe: what each setting left on auto becomes on a CPU and on a GPU, the time budget's plan, and the
training time shown before Start."""

import pytest

from studio.config import RunConfig
from studio.estimate.recipe import budget_steps, resolve
from studio.estimate.speed import time_estimate, write_speed


def test_on_a_cpu_auto_settings_follow_the_model_size_and_the_measured_recipe():
    small = resolve(RunConfig(), device="cpu", params=135_000_000, train_rows=3000)
    t, lora = small.config.train, small.config.lora
    assert (t.learning_rate, t.per_device_train_batch_size, t.gradient_accumulation_steps) == (1e-3, 16, 1)
    assert lora.use_gradient_checkpointing == "false" and small.time_budget_s == 7 * 60
    assert any("135M-parameter" in c for c in small.choices)
    assert resolve(RunConfig(), device="cpu", params=500_000_000).config.train.learning_rate == 5e-4
    assert resolve(RunConfig(), device="cpu", params=7_000_000_000).config.train.learning_rate == 2e-4


def test_settings_the_user_chose_are_kept():
    config = RunConfig().replace({"train": {"learning_rate": 3e-4, "per_device_train_batch_size": 4,
                                            "gradient_accumulation_steps": 2, "time_budget_minutes": 0,
                                            "eval_steps": 0}, "lora": {"use_gradient_checkpointing": "true"}})
    out = resolve(config, device="cpu", params=135_000_000)
    t = out.config.train
    assert (t.learning_rate, t.per_device_train_batch_size, t.gradient_accumulation_steps, t.eval_steps) == \
        (3e-4, 4, 2, 0)
    assert out.config.lora.use_gradient_checkpointing == "true" and out.time_budget_s is None and not out.choices


def test_on_a_gpu_the_largest_micro_batch_that_fits_with_checkpointing_off_first():
    share = {("false", 64): 0.95, ("false", 32): 0.60, ("unsloth", 64): 0.40}

    def fits(batch, mode, four_bit):  # the same in 4-bit: 4-bit auto goes on, as nothing fits at 8 rows checkpointed
        return share.get((mode, batch), 0.99)

    out = resolve(RunConfig(), device="cuda", params=1_500_000_000, fits=fits)
    t = out.config.train
    assert (t.per_device_train_batch_size, out.config.lora.use_gradient_checkpointing) == (32, "false")
    assert t.gradient_accumulation_steps == 1 and out.time_budget_s is None  # 32 rows already ≥ 16 per step
    assert any("60% of the GPU" in c for c in out.choices)
    nothing = resolve(RunConfig(), device="cuda", params=1_500_000_000, fits=lambda b, m, four_bit: 0.99)
    assert nothing.config.train.per_device_train_batch_size == 8 and nothing.config.model.load_in_4bit == "true"
    assert nothing.config.lora.use_gradient_checkpointing == "unsloth" and "nothing fits" in nothing.choices[2]


def test_the_time_budget_leaves_room_for_its_evaluations():
    # 420 s, 2 s a step, 100 rows scored per evaluation at 0.07 s a row (both measured at the start)
    steps, every = budget_steps(420, 2.0, 100, 0.07, planned=1000)
    evaluations = steps // every + 1
    assert steps * 2.0 + evaluations * 100 * 0.07 <= 420 < (steps + 5) * 2.0 + evaluations * 7
    assert budget_steps(420, 2.0, 100, 0.1, planned=50) == (50, 10)  # a short plan is not stretched


def test_the_training_time_is_shown_before_start_in_words(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    config = RunConfig().replace({"model": {"name": "m"}, "train": {"max_steps": 30}})
    resolved = resolve(config, device="cpu", params=135_000_000)  # 16 rows a step, 7-minute budget
    assert "measured in the first seconds" in time_estimate(resolved, "m", 99)
    write_speed("m|cpu|x", 0.05)  # 20 rows/s: 480 rows take 24 seconds
    assert time_estimate(resolved, "m", 99) == ("30 steps × 16 rows. About 24 seconds of training at 20.0 rows/s "
                                                "(measured on this machine with this model).")
    write_speed("m|cpu|x", 1.0)  # 480 s > 420 s: the budget stops it
    text = time_estimate(resolved, "m", 99)
    assert "the time budget stops it after 7 minutes, near step 26" in text


def test_the_training_time_is_this_files_rows_at_the_measured_speed(tmp_path, monkeypatch):
    """The speed was measured on another file's rows: this file's rows, twice as long, take twice as long (a held-back
    file was promised 8.9 rows/s, the previous file's speed, and trained at 4.5)."""
    from studio.door.data import DataFacts
    from studio.door.plan import plan

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    config = RunConfig().replace({"model": {"name": "m"}, "train": {"max_steps": 30, "per_device_train_batch_size": 16,
                                                                     "time_budget_minutes": 0}})
    resolved = resolve(config, device="cpu", params=135_000_000)
    write_speed("m|cpu|x", 0.05, row_tokens=60.0)  # 20 rows/s on rows costing 60 tokens each
    assert "About 24 seconds of training at 20.0 rows/s" in time_estimate(resolved, "m", 99, row_tokens=60.0)
    assert "About 48 seconds of training at 10.0 rows/s" in time_estimate(resolved, "m", 99, row_tokens=120.0)
    short = DataFacts(99, [40] * 99, [0, 1, 2] * 33, {}, "m", 512)
    long = DataFacts(99, [200] * 99, [0, 1, 2] * 33, {}, "m", 512)
    fast, slow = plan(config, short).time, plan(config, long).time
    assert "for rows of this file's length" in fast and "for rows of this file's length" in slow
    rate = [float(text.split(" rows/s")[0].rsplit("at ", 1)[1]) for text in (fast, slow)]
    assert rate[0] > 3 * rate[1]  # 200-token rows are slower than 40-token ones, as their compute is


def test_on_a_cpu_the_micro_batch_fits_half_the_ram(monkeypatch):
    from studio.estimate import ram
    from studio.estimate.model_shape import known_shape

    shape = known_shape("embedded/SmolLM2-135M-Instruct")
    long_rows = [500] * 300
    monkeypatch.setattr(ram, "machine_ram_gb", lambda: 8.0)  # a laptop
    out = resolve(RunConfig(), device="cpu", params=shape.params, fits=ram.ram_share(shape, long_rows, 2048))
    t = out.config.train
    chosen = t.per_device_train_batch_size
    assert ram.estimate_cpu_ram(shape, chosen, long_rows, 2048, False, 8.0).share <= 0.5
    assert chosen == 16 or ram.estimate_cpu_ram(shape, 2 * chosen, long_rows, 2048, False, 8.0).share > 0.5
    assert chosen < 16 and t.gradient_accumulation_steps * chosen == 16  # the same rows per optimizer step
    assert out.config.lora.use_gradient_checkpointing == "false" and "of the RAM" in out.choices[1]
    monkeypatch.setattr(ram, "machine_ram_gb", lambda: 64.0)
    roomy = resolve(RunConfig(), device="cpu", params=shape.params, fits=ram.ram_share(shape, long_rows, 2048))
    assert roomy.config.train.per_device_train_batch_size == 16


@pytest.mark.parametrize("measured", ["cpu-ram-smollm2.json", "cpu-ram-smollm2-float32.json"])
def test_the_ram_estimate_holds_on_the_measured_points(measured):
    """bench/cpu_ram.py's peaks on this project's CPU machines (bfloat16 compute on a CPU with AVX-512, float32 on
    one without): the estimate within -5% / +15% of each."""
    import json
    from pathlib import Path

    points = json.loads((Path(__file__).parents[2] / "docs/device-results" / measured).read_text())
    assert {p["checkpointing"] for p in points} == {True, False}
    from studio.estimate.model_shape import known_shape
    from studio.estimate.ram import estimate_cpu_ram

    shape = known_shape("embedded/SmolLM2-135M-Instruct")
    for p in points:
        estimate = estimate_cpu_ram(shape, p["batch"], [p["length"]] * p["batch"], p["length"], p["checkpointing"],
                                    bfloat16=p.get("compute", "bfloat16") == "bfloat16")
        assert 0.95 <= estimate.peak_gb / p["peak_gb"] <= 1.15, p


def test_float32_compute_has_its_own_ram_estimate_and_a_smaller_micro_batch(monkeypatch):
    """A CPU without AVX-512 trains in float32, whose activations weigh more than twice bfloat16 autocast's: the
    estimate says so, the auto micro-batch that fits half the RAM is smaller (the same rows per optimizer step), and
    the plan before Start names the compute."""
    from studio.config import ModelSpec
    from studio.door.plan import cpu_view
    from studio.estimate import ram
    from studio.estimate.model_shape import known_shape
    from studio.models import loading

    shape = known_shape("embedded/SmolLM2-135M-Instruct")
    rows = [237] * 300  # Financial PhraseBank's longest rows
    assert ram.estimate_cpu_ram(shape, 16, rows, 2048, False, bfloat16=False).peak_gb > 1.8 * ram.estimate_cpu_ram(
        shape, 16, rows, 2048, False).peak_gb
    monkeypatch.setattr(ram, "machine_ram_gb", lambda: 24.0)
    chosen = {bf16: resolve(RunConfig(), device="cpu", params=shape.params,
                            fits=ram.ram_share(shape, rows, 2048, bf16)).config.train for bf16 in (True, False)}
    assert chosen[True].per_device_train_batch_size == 16
    assert chosen[False].per_device_train_batch_size == 8 and chosen[False].gradient_accumulation_steps == 2

    monkeypatch.setattr(loading, "cpu_has_bf16", lambda: False)
    assert not loading.cpu_computes_bf16(ModelSpec()) and loading.cpu_computes_bf16(ModelSpec(dtype="bfloat16"))
    assert "Compute: float32" in "\n".join(cpu_view(RunConfig(), rows, [0, 1, 2] * 100))
    monkeypatch.setattr(loading, "cpu_has_bf16", lambda: True)
    assert loading.cpu_computes_bf16(ModelSpec()) and not loading.cpu_computes_bf16(ModelSpec(dtype="float32"))
    assert "Compute: bfloat16" in "\n".join(cpu_view(RunConfig(), rows, [0, 1, 2] * 100))
    chosen_float32 = RunConfig().replace({"model": {"dtype": "float32"}})  # the user's choice, not the CPU's lack
    assert "Compute: float32 (the Number format setting)" in "\n".join(cpu_view(chosen_float32, rows, [0] * 300))


def test_the_ram_estimate_counts_what_the_process_holds_when_the_model_loads():
    """A bare training process (the CLI) adds nothing to the formula; one that holds 1 GiB more at that point (the web
    app, models kept for evaluation) gets 1 GiB more, as it stays for the whole run."""
    from studio.estimate.model_shape import known_shape
    from studio.estimate.ram import BARE_PROCESS_AT_LOAD_GB, estimate_cpu_ram

    shape = known_shape("embedded/SmolLM2-135M-Instruct")
    rows = [237] * 16

    def peak(held):
        return estimate_cpu_ram(shape, 16, rows, 2048, False, held_gb=held).peak_gb

    assert peak(None) == peak(0.5) == peak(BARE_PROCESS_AT_LOAD_GB)
    assert peak(BARE_PROCESS_AT_LOAD_GB + 1.0) == pytest.approx(peak(None) + 1.0, abs=0.011)


def test_on_a_gpu_a_small_set_gets_smaller_micro_batches_and_enough_steps():
    """The largest micro-batch that fits gave a 424-row set 12 steps on a GPU: small sets get micro-batches that
    leave the run its steps (the smallest when none does), large sets keep the largest."""
    def fits(batch, mode, four_bit):
        return 0.05

    small = resolve(RunConfig(), device="cuda", params=135_000_000, train_rows=449, fits=fits).config.train
    assert small.per_device_train_batch_size == 8 and small.gradient_accumulation_steps == 2  # 56 steps
    middle = resolve(RunConfig(), device="cuda", params=135_000_000, train_rows=1500, fits=fits).config.train
    assert middle.per_device_train_batch_size == 32  # 3,000 passes / 32 = 93 steps; 64 would give 46
    large = resolve(RunConfig(), device="cuda", params=135_000_000, train_rows=4426, fits=fits)
    assert large.config.train.per_device_train_batch_size == 64
    assert not any("at least 60 steps" in c for c in large.choices)
    assert any("at least 60 steps" in c for c in resolve(RunConfig(), device="cuda", params=135_000_000,
                                                           train_rows=449, fits=fits).choices)
