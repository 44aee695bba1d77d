"""The data check's progress while the embedded model is converted (one call of about 40 seconds on 2 cores): the
bar moves by the clock and says what happens, instead of sitting still."""

import time

from conftest import SAMPLE

from studio.config import RunConfig
from studio.door import data


def test_with_clock_moves_the_bar_while_a_silent_call_runs():
    seen = []
    result = data.with_clock(lambda: time.sleep(2.6) or "done", lambda m, f: seen.append((m, f)), "Converting",
                             0.1, 0.4, expected_s=4)
    assert result == "done"
    fractions = [f for _, f in seen]
    assert seen[0] == ("Converting", 0.1) and len(seen) >= 3  # the start, then a tick a second
    assert fractions == sorted(fractions) and 0.1 < fractions[-1] < 0.4
    assert seen[-1][0].startswith("Converting: ") and seen[-1][0].endswith(" s")


def test_the_first_check_says_the_model_is_converted(monkeypatch, tiny_model_dir):
    import studio.models.loading as loading

    monkeypatch.setattr(loading, "needs_conversion", lambda name: True)
    monkeypatch.setattr(data, "_tokenizers", {})
    real = data.tokenizer_for
    monkeypatch.setattr(data, "tokenizer_for", lambda name, log: (time.sleep(1.5), real(name, log))[1])
    seen = []
    config = RunConfig().replace({"data": {"path": str(SAMPLE)}, "model": {"name": str(tiny_model_dir)}})
    checked = data.check_data(config, str(tiny_model_dir), progress=lambda m, f: seen.append((m, f)))
    assert checked.facts.lengths  # the tokenizer came: rows were counted in tokens
    converting = [f for m, f in seen if m.startswith("Converting the embedded model")]
    assert len(converting) >= 2 and converting == sorted(converting) and converting[-1] < 0.4
    assert [m for m, _ in seen][-1].startswith("Reading, checking")
