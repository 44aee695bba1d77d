"""Train tab: start / stop, progress, live loss, memory and validation charts, the log, error panels.
Polled with gr.Timer from the worker's snapshot; a reloaded page reattaches to the running job."""

from __future__ import annotations

import gradio as gr

from studio.errors import StudioError
from studio.train import jobs
from studio.ui import charts
from studio.ui.context import UIContext, error_box, md_list, ui_errors
from studio.ui.forms import Form

POLL_SECONDS = 1.0


def build(ctx: UIContext, form: Form) -> dict:
    with gr.Row():
        gpus = gr.Dropdown(choices=[1], value=1, label="GPUs to use", visible=False, elem_id="gpus", scale=1,
                           info="More than 1: trained by `accelerate launch` (DDP); rows per step = batch × grad "
                                "accum × GPUs.")
        start = gr.Button("Start training", variant="primary", elem_id="start-training", scale=2)
        stop = gr.Button("Stop (saves the adapter)", variant="stop", elem_id="stop-training", scale=2)
    status = gr.HTML(progress_html(None), elem_id="train-status")
    error = gr.HTML()
    with gr.Row():
        loss = gr.Plot(charts.loss([]), label="Loss", elem_id="loss-chart")
        memory = gr.Plot(charts.memory([]), label="Memory")
    evals = gr.Plot(charts.eval_points([]), label="Validation during training")
    log = gr.Textbox(label="Log", lines=10, max_lines=10, autoscroll=True, elem_id="train-log")
    start_notes = gr.Markdown()
    timer = gr.Timer(POLL_SECONDS)

    def poll():
        job = jobs.current()
        if job is None:
            return (progress_html(None), "", gr.skip(), gr.skip(), gr.skip(), "", gr.update(interactive=True),
                    gr.update(interactive=False))
        snap = job.snapshot()
        records = job.earlier + job.stream.records()  # a resumed run's chart starts at its first step
        err = error_box(snap["error"], snap["levers"]) if snap["error"] else ""
        return (progress_html(snap), err, charts.loss(records),
                charts.memory(records, estimate_gb=snap["memory"]["estimate_gb"]), charts.eval_points(records),
                job.log_tail(60), gr.update(interactive=job.done),  # no second Start while a run trains
                gr.update(interactive=not job.done))  # and no Stop when nothing trains

    poll_outputs = [status, error, loss, memory, evals, log, start, stop]
    timer.tick(poll, None, poll_outputs, queue=False, show_progress="hidden", api_name="training_status")

    @ui_errors
    def do_stop():
        job = jobs.current()
        if job is None or job.done:
            raise StudioError("No training run is in progress.")
        job.stop()
        gr.Info("Stopping after the current step; the adapter will be saved.")

    stop.click(do_stop, None, None, api_name="stop_training")

    @ui_errors
    def start_from_form(data):
        return start_job(ctx, form.config(data), data[gpus])

    fn, inputs = form.bind(start_from_form, gpus)
    start.click(fn, inputs, start_notes, api_name="start_training")

    def show_gpus():
        from studio.train.launcher import visible_gpus

        n = visible_gpus()
        return gr.update(visible=n > 1, choices=list(range(1, n + 1)) if n > 1 else [1], value=1)

    return {"poll": poll, "poll_outputs": poll_outputs, "gpus": gpus,
            "show_gpus": show_gpus}


def start_job(ctx: UIContext, config, gpus: int = 1):
    from studio.config import rows_per_step
    from studio.train.recipe import preview

    if int(gpus or 1) > 1:
        from studio.train.launcher import start_launched

        job = start_launched(config, ctx.runs_dir, int(gpus))
    else:
        from studio.train.worker import start_training

        job = start_training(config, ctx.runs_dir)
    t = preview(config, ctx.data_rows).config.train
    per_step = (f"{rows_per_step(t, int(gpus or 1))} rows per step (batch {t.per_device_train_batch_size} × grad "
                f"accum {t.gradient_accumulation_steps} × {int(gpus or 1)} GPU{'s' if int(gpus or 1) > 1 else ''})")
    notes = [f"Run **{job.run.name}** started in `{job.run.path}`: {per_step}."] + [f"⚠ {w}" for w in job.warnings]
    gr.Info(f"Training started: {job.run.name}")
    return md_list(notes)


def progress_html(snap: dict | None) -> str:
    if not snap:
        return "<div class='studio-progress'>No run yet: set up the data and the model, then Start training.</div>"
    total = snap["total_steps"] or 0
    pct = 100 * snap["progress"]
    eta = "" if snap["eta_s"] is None else f" · ETA {fmt_seconds(snap['eta_s'])}"
    tps = "" if snap["tokens_per_s"] is None else f" · {snap['tokens_per_s']:.0f} tokens/s"
    loss = "" if snap["loss"] is None else f" · loss {snap['loss']:.4f}"
    backend = snap["backend"].get("name")
    backend = f" · backend {backend} ({snap['backend'].get('device')})" if backend else ""
    state = snap["state"] if snap["phase"] == snap["state"] else f"{snap['state']} ({snap['phase']})"
    if snap.get("best_eval") and snap["state"] in ("finished", "stopped"):
        state += f" · kept the best adapter, step {snap['best_eval']['step']}"
    return (f"<div class='studio-progress'><b>{snap['run']}</b>: {state} · step "
            f"{snap['step']}/{total or '?'}{loss}{tps}{eta} · {fmt_seconds(snap['elapsed_s'])} elapsed{backend}"
            f"<div class='bar'><div style='width:{pct:.1f}%'></div></div>{memory_line(snap.get('memory'))}</div>")


def memory_line(memory: dict | None) -> str:
    """Estimated vs measured peak memory, side by side (the run folder's memory.json keeps both): the GPU's, or on a
    CPU run the process's RAM beside the RAM estimate (a GPU estimate means nothing there)."""
    if not memory:
        return ""
    if memory.get("rss_gb") and not memory.get("measured_gb"):
        line = f"Memory: this run is on the CPU and its process uses <b>{memory['rss_gb']:.2f} GiB</b> of RAM"
        if memory.get("ram_estimate_gb"):  # the process also holds the app and any models kept for evaluation
            line += f" · the RAM estimate for the training's peak: <b>{memory['ram_estimate_gb']:.2f} GiB</b>"
    elif memory.get("estimate_gb"):
        line = f"GPU memory: estimated peak <b>{memory['estimate_gb']:.2f} GiB</b> ({memory.get('verdict')})"
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
