"""Train tab: start / stop, progress, live loss, memory and validation charts, the log, error panels.
Polled with gr.Timer from the job's snapshot; a reloaded page reattaches to the running job.

The page shares the CPU with the training it watches (the web app trains in its own process): a poll sends only what
changed (each chart when new records arrived and its time has come, the log when it grew), and it comes every 5 s
(docs/benchmarks.md, "The browser and the CLI")."""

from __future__ import annotations

import time

import gradio as gr

from studio.door import training
from studio.errors import StudioError
from studio.ui import charts
from studio.ui.html import error_box, escape, notify
from studio.ui.page import Page, UIContext, Values

# While a run trains: the status line (step, loss, speed, time left). Each poll wakes chromium, the app and the
# network on a 2-core CPU the training shares: at 5 s instead of 2 chromium used 2.8% of the cores instead of 4.0%
# and the training got 0.968x its CPU with the page open instead of 0.954x (bench/page_cost.py; a CPU step takes
# 3-9 s, so the line misses no step it would have shown; docs/benchmarks.md, "The browser and the CLI").
POLL_SECONDS = 5.0
# Each chart is drawn only when it has new points, at most this often while the run trains (at once when a run or a
# page starts and when the run ends): chromium spends 20-70 ms of its main thread on each plotly chart drawn, which
# the training shares on a 2-core machine (bench/chart_cost.py; docs/benchmarks.md, "The browser and the CLI").
CHART_SECONDS = {"loss": 10.0, "memory": 30.0, "evals": 10.0}
IDLE_POLL_SECONDS = 5.0  # while none does (a run started elsewhere, the CLI, still shows up; no more often)
POLL_OUTPUTS = ["train/status", "train/error", "train/loss", "train/memory", "train/evals", "train/log",
                "train/start", "train/stop", "train/seen", "train/timer", "train/resume"]


def layout(page: Page) -> None:
    with gr.Row():
        page.add("train/gpus", gr.Dropdown(
            choices=[1], value=1, label="GPUs to use", visible=False, elem_id="gpus", scale=1,
            info="More than 1: trained by `accelerate launch` (DDP); rows per step = batch × grad accum × GPUs."))
        page.add("train/start", gr.Button("Start training", variant="primary", elem_id="start-training", scale=2))
        page.add("train/stop", gr.Button("Stop (saves the adapter)", variant="stop", elem_id="stop-training", scale=2))
        page.add("train/resume", gr.Button("Resume the interrupted run", elem_id="resume-training", scale=2,
                                           visible=False))
    page.add("train/status", gr.HTML(progress_html(None), elem_id="train-status"))
    page.add("train/error", gr.HTML())
    with gr.Row():
        page.add("train/loss", gr.Plot(charts.loss([]), label="Loss", elem_id="loss-chart"))
        page.add("train/memory", gr.Plot(charts.memory([]), label="Memory"))
    page.add("train/evals", gr.Plot(charts.eval_points([]), label="Validation during training"))
    page.add("train/log", gr.Textbox(label="Log", lines=10, max_lines=10, autoscroll=True, elem_id="train-log"))
    page.add("train/notes", gr.Markdown())
    page.add("train/timer", gr.Timer(POLL_SECONDS))
    page.add("train/seen", gr.State({}))  # what this page shows already: (run, records, log) it was sent


def wire(page: Page) -> None:
    page.on(page["train/timer"].tick, poll, ["train/seen"], POLL_OUTPUTS, queue=False, show_progress="hidden",
            api_name="training_status")
    page.on(page["train/stop"].click, stop, [], [], api_name="stop_training")
    page.on(page["train/start"].click, start, ["train/gpus"], ["train/notes", "train/timer"], config=True,
            api_name="start_training")
    page.on(page["train/resume"].click, resume, ["train/seen"], ["train/notes", "train/timer", "train/resume"],
            api_name="resume_interrupted")


def poll(ctx: UIContext, values: Values) -> dict:
    """What changed since this page's last poll (``train/seen``): the status line always, each chart when it has new
    points and its time has come (charts_due), the log when it grew, the buttons and the poll's pace when the run's
    state changed."""
    seen = values["train/seen"] or {}
    status = training.status()
    if status is None:
        return idle(ctx, seen)
    snap = status.snapshot
    records = status.records  # a resumed run's charts start at its first step
    now = {"run": snap["run"], "log": status.log, "state": snap["state"], "error": snap["error"]}
    drawn = dict(seen.get("drawn") or {}) if seen.get("run") == now["run"] else {}
    out = {"train/status": progress_html(snap), "train/seen": {**now, "drawn": drawn}}
    points = {"loss": len(records), "memory": len(records), "evals": sum(r.get("kind") == "eval" for r in records)}
    draw = {"loss": lambda: charts.loss(records), "evals": lambda: charts.eval_points(records),
            "memory": lambda: charts.memory(records, estimate_gb=snap["memory"]["estimate_gb"],
                                            ram_estimate_gb=snap["memory"]["ram_estimate_gb"])}
    clock = time.time()
    for name in charts_due(drawn, points, status.done, clock):
        drawn[name] = [points[name], clock]
        out[f"train/{name}"] = draw[name]()
    if seen.get("log") != now["log"]:
        out["train/log"] = status.log
    if (seen.get("run"), seen.get("state"), seen.get("error")) != (now["run"], now["state"], now["error"]):
        out.update({"train/error": error_box(snap["error"], snap["levers"]) if snap["error"] else "",
                    "train/start": gr.update(interactive=status.done),  # no second Start while a run trains
                    "train/stop": gr.update(interactive=not status.done),  # and no Stop when nothing trains
                    "train/timer": gr.Timer(IDLE_POLL_SECONDS if status.done else POLL_SECONDS),
                    "train/resume": gr.update(visible=False)})
    return out


def charts_due(drawn: dict, points: dict, done: bool, clock: float) -> list[str]:
    """The charts this poll draws: those this page has not drawn for this run, and those with new points whose time
    has come (``CHART_SECONDS``; any time once the run has ended). ``drawn``: chart -> [points, when] as sent."""
    due = []
    for name, every in CHART_SECONDS.items():
        last = drawn.get(name)
        if last is None or (points[name] != last[0] and (done or clock - last[1] >= every)):
            due.append(name)
    return due


def idle(ctx: UIContext, seen: dict) -> dict:
    """No run in this process: the newest run if it was interrupted (a crash, a restart), with Resume."""
    stopped = training.interrupted(ctx.runs_dir)
    now = {"state": "none", "interrupted": stopped.name if stopped else None}
    if (seen.get("state"), seen.get("interrupted")) == (now["state"], now["interrupted"]):
        return {"train/seen": now}
    resumable = stopped is not None and stopped.checkpoint_step is not None
    return {"train/status": f"<div class='studio-progress'>{stopped.html_words()}</div>" if stopped else
            progress_html(None), "train/error": "", "train/log": "",
            "train/start": gr.update(interactive=True), "train/stop": gr.update(interactive=False),
            "train/resume": gr.update(visible=resumable, value=f"Resume {stopped.name} from step "
                                      f"{stopped.checkpoint_step}" if resumable else "Resume"),
            "train/timer": gr.Timer(IDLE_POLL_SECONDS), "train/seen": now}


def resume(ctx: UIContext, values: Values) -> dict:
    name = (values["train/seen"] or {}).get("interrupted")
    if not name:
        raise StudioError("No interrupted run to resume here; the Runs tab resumes any run with a checkpoint.")
    started = training.resume(name, ctx.runs_dir, names_only=True)
    notify(f"Resuming {started.run.name}.")
    return {"train/notes": started.markdown(), "train/timer": gr.Timer(POLL_SECONDS),
            "train/resume": gr.update(visible=False)}


def stop(ctx: UIContext, values: Values) -> None:
    notify(training.stop())


def start(ctx: UIContext, values: Values) -> dict:
    started = training.start(values.config, ctx.runs_dir, values["train/gpus"])
    notify(f"Training started: {started.run.name}")
    return {"train/notes": started.markdown(), "train/timer": gr.Timer(POLL_SECONDS)}


def show_gpus(ctx: UIContext, values: Values) -> dict:
    n = training.visible_gpus()
    return {"train/gpus": gr.update(visible=n > 1, choices=list(range(1, n + 1)) if n > 1 else [1], value=1)}


def progress_html(snap: dict | None) -> str:
    if not snap:
        return "<div class='studio-progress'>No run yet: set up the data and the model, then Start training.</div>"
    total = snap["total_steps"] or 0
    pct = 100 * snap["progress"]
    eta = "" if snap["eta_s"] is None else f" · ETA {fmt_seconds(snap['eta_s'])}"
    tps = "" if snap["tokens_per_s"] is None else f" · {snap['tokens_per_s']:.0f} tokens/s"
    loss = "" if snap["loss"] is None else f" · loss {snap['loss']:.4f}"
    batch = "" if not (snap.get("batch") and snap.get("rows_per_step")) else \
        f" · {snap['rows_per_step']} rows a step ({snap['batch'][0]} × {snap['batch'][1]})"  # as trained
    backend = snap["backend"].get("name")
    backend = f" · backend {backend} ({snap['backend'].get('device')})" if backend else ""
    state = snap["state"] if snap["phase"] == snap["state"] else f"{snap['state']} ({snap['phase']})"
    kept = snap.get("adapter_step")
    if kept is not None and snap.get("best_eval") and snap["state"] in ("finished", "stopped"):
        state += (f" · kept the last adapter (step {kept})" if kept == snap["step"] else
                  f" · kept the adapter of step {kept}, better than the last")
    return (f"<div class='studio-progress'><b>{escape(snap['run'])}</b>: {escape(state)} · step "
            f"{snap['step']}/{total or '?'}{loss}{batch}{tps}{eta} · {fmt_seconds(snap['elapsed_s'])} elapsed"
            f"{escape(backend)}<div class='bar'><div style='width:{pct:.1f}%'></div></div>"
            f"{first_line(snap.get('first_classifier'))}{memory_line(snap.get('memory'))}</div>")


def first_line(first: dict | None) -> str:
    """The run's first classifier, while it is the one in use: ready to try while the LLM trains."""
    if not first or first.get("macro_f1") is None:
        return ""
    when = f", {fmt_seconds(first['after_start_s'])} after Start" if first.get("after_start_s") is not None else ""
    return (f"<div class='studio-first'>First classifier ready{when}: the classic model (TF-IDF + logistic "
            f"regression), Val A macro-F1 <b>{first['macro_f1']:.3f}</b> (cross-fitted). Evaluate, the Playground, "
            "predict and the bundle use it while the LLM trains; the LLM competes with it once trained and "
            "evaluated.</div>")


def memory_line(memory: dict | None) -> str:
    """Estimated vs measured peak memory, side by side (the run folder's memory.json keeps both): the GPU's, or on a
    CPU run the process's RAM beside the RAM estimate (a GPU estimate means nothing there)."""
    if not memory:
        return ""
    on_cpu = not memory.get("on_gpu", True) or (memory.get("rss_gb") and not memory.get("measured_gb"))
    if on_cpu and (memory.get("rss_gb") or memory.get("ram_estimate_gb")):
        line = "Memory: this run is on the CPU"
        if memory.get("rss_gb"):
            line += f" and its process uses <b>{memory['rss_gb']:.2f} GiB</b> of RAM"
        else:  # before its first step: nothing measured yet (a GPU estimate would mean nothing here)
            line += ": its RAM use shows from the first step"
        if (memory.get("rss_peak_gb") or 0) > (memory.get("rss_gb") or 0) + 0.05:  # the most it held (the OS's mark)
            line += f" (at most <b>{memory['rss_peak_gb']:.2f} GiB</b> so far)"
        if memory.get("ram_estimate_gb"):  # with what the process held when the model loaded (the app, kept models)
            line += f" · the RAM estimate for its peak: <b>{memory['ram_estimate_gb']:.2f} GiB</b>"
    elif memory.get("estimate_gb") and not on_cpu:
        line = (f"GPU memory: estimated peak <b>{memory['estimate_gb']:.2f} GiB</b> "
                f"({escape(memory.get('verdict'))})")
        if memory.get("measured_gb"):
            ratio = memory["measured_gb"] / memory["estimate_gb"]
            line += f" · measured peak <b>{memory['measured_gb']:.2f} GiB</b> ({100 * ratio:.0f}% of the estimate)"
            if memory.get("in_use_at_start_gb"):
                line += f", beyond the {memory['in_use_at_start_gb']:.2f} GiB other models held when the run started"
    else:
        return ""
    return f"<div class='studio-memory'>{line}</div>"


def fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
