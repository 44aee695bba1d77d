"""The Train tab's poll: what it sends the page, and when (each plotly chart drawn costs the browser's main thread
20-70 ms, which the training shares on a small machine: bench/chart_cost.py)."""

from __future__ import annotations

import time

import plotly.graph_objects as go

from studio.door.training import Status
from studio.runs.folder import RunDir
from studio.runs.jobs import ENDED, LiveState, build_snapshot
from studio.runs.stream import MetricsStream
from studio.ui.tabs import train as tab


class FakeRun:
    """A run the poll watches: records appended as a training would, its state set by the test."""

    def __init__(self, path):
        self.run, self.stream = RunDir(path), MetricsStream()
        self.live = LiveState(state="running", phase="training", started=time.time(), total_steps=100)

    def step(self, step: int) -> None:
        self.stream.append({"kind": "train", "step": step, "loss": 1.0 / step, "learning_rate": 1e-4,
                            "rss_gb": 5.0, "device": "cpu", "tokens_per_s": 400.0, "max_steps": 100})

    def evaluate(self, step: int) -> None:
        self.stream.append({"kind": "eval", "step": step, "macro_f1": 0.5, "minority_recall": 0.4})

    def status(self) -> Status:
        done = self.live.state in ENDED
        return Status(build_snapshot(self.run, self.stream, self.live), self.stream.records(), "log", done)


def drawn_charts(out: dict) -> set[str]:
    return {key.split("/")[1] for key, value in out.items() if isinstance(value, go.Figure)}


def test_each_chart_is_drawn_when_it_has_new_points_and_its_time_has_come(monkeypatch, tmp_path):
    fake = FakeRun(tmp_path / "run-a")
    monkeypatch.setattr(tab.training, "status", fake.status)
    clock = [1000.0]
    monkeypatch.setattr(tab, "time", type("Clock", (), {"time": staticmethod(lambda: clock[0])}))

    def poll(seen):
        out = tab.poll(None, {"train/seen": seen})
        return out, out["train/seen"]

    out, seen = poll({})
    assert drawn_charts(out) == {"loss", "memory", "evals"}  # a page that has none draws all three at once
    fake.step(1)
    clock[0] += tab.POLL_SECONDS
    out, seen = poll(seen)
    assert drawn_charts(out) == set() and "train/status" in out  # new points wait for the chart's time
    clock[0] += tab.CHART_SECONDS["loss"]
    out, seen = poll(seen)
    assert drawn_charts(out) == {"loss"}  # the memory chart's time has not come, and no validation arrived
    fake.evaluate(1)
    fake.step(2)
    clock[0] += tab.CHART_SECONDS["memory"]
    out, seen = poll(seen)
    assert drawn_charts(out) == {"loss", "memory", "evals"}
    clock[0] += tab.CHART_SECONDS["memory"]
    out, seen = poll(seen)
    assert drawn_charts(out) == set()  # nothing new: nothing drawn however long it has been
    fake.step(3)
    fake.live.state = "finished"
    clock[0] += tab.POLL_SECONDS
    out, seen = poll(seen)
    assert drawn_charts(out) == {"loss", "memory"}  # the run's end: its last points at once
    out, _ = poll({})
    assert drawn_charts(out) == {"loss", "memory", "evals"}  # a page opened later draws the whole run
    assert out["train/start"]["interactive"] and not out["train/stop"]["interactive"]


def test_a_long_loss_line_has_no_markers():
    records = [{"kind": "train", "step": s, "loss": 1.0 / s, "learning_rate": 1e-4} for s in range(1, 200)]
    short, long = tab.charts.loss(records[:15]), tab.charts.loss(records)
    assert short.data[0].mode == "lines+markers" and long.data[0].mode == "lines"
    assert list(long.data[0].x) == list(range(1, 200))


def test_the_cpu_memory_chart_starts_at_zero_beside_the_ram_estimate(monkeypatch, tmp_path):
    """A process that moved 0.06 GiB drawn on an axis scaled to the data looked like a cliff; from zero, with the RAM
    estimate the Train tab's status line names, the same line reads as flat and under its estimate."""
    fake = FakeRun(tmp_path / "run-a")
    fake.live.memory_estimate = {"cpu_ram": {"peak_gb": 7.06}}
    for step in range(1, 6):
        fake.stream.append({"kind": "train", "step": step, "loss": 1.0, "rss_gb": 4.76 + 0.015 * step,
                            "rss_peak_gb": 4.9, "device": "cpu", "mem_total_gb": 23.4})
    monkeypatch.setattr(tab.training, "status", fake.status)
    chart = tab.poll(None, {"train/seen": {}})["train/memory"]
    assert chart.layout.yaxis.rangemode == "tozero"
    assert [trace.name for trace in chart.data] == ["process RSS", "most so far"]
    assert list(chart.data[1].y) == [4.9] * 5
    assert [a.text for a in chart.layout.annotations] == ["RAM estimate 7.06 GiB"]
