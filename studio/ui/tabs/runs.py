"""Runs tab: history (status, model, key settings, metrics), open / resume / delete, and a comparison of two
runs' settings and metrics (the guide: change one knob at a time)."""

from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from studio.door import runs as history
from studio.door import training
from studio.errors import StudioError
from studio.ui.html import notify
from studio.ui.page import Page, UIContext, Values

TABLE_HEAD = ["name", "state", "Val A macro-F1", "data"]
REFRESH_OUTPUTS = ["runs/table", "runs/chosen", "runs/left", "runs/right"]


def layout(page: Page) -> None:
    page.add("runs/refresh", gr.Button("Refresh", size="sm"))
    page.add("runs/table", gr.Dataframe(headers=TABLE_HEAD, label="Runs", interactive=False, elem_id="runs-table"))
    with gr.Row():
        page.add("runs/chosen", gr.Dropdown(label="Run", choices=[], scale=3, allow_custom_value=True))
        page.add("runs/resume", gr.Button("Resume from last checkpoint", scale=1))
        page.add("runs/confirm", gr.Checkbox(label="Yes, delete it", value=False, scale=1))
        page.add("runs/delete", gr.Button("Delete run", variant="stop", scale=1))
    page.add("runs/details", gr.Code(label="The run's record (run.json)", language="json", max_lines=30))
    gr.Markdown("### Compare two runs")
    with gr.Row():
        page.add("runs/left", gr.Dropdown(label="Run A", choices=[], allow_custom_value=True))
        page.add("runs/right", gr.Dropdown(label="Run B", choices=[], allow_custom_value=True))
    page.add("runs/comparison", gr.Dataframe(headers=["setting", "run A", "run B"], wrap=True,
                                             column_widths=["30%", "35%", "35%"], elem_id="runs-comparison",
                                             label="Settings and metrics that differ", interactive=False))


def wire(page: Page) -> None:
    page.on(page["runs/refresh"].click, refresh, [], REFRESH_OUTPUTS, api_name="list_runs")
    page.on(page["runs/chosen"].change, show, ["runs/chosen"], ["runs/details"], api_visibility="private")
    page.on(page["runs/resume"].click, resume, ["runs/chosen"], [], api_name="resume_run")
    page.on(page["runs/delete"].click, delete, ["runs/chosen", "runs/confirm"], [*REFRESH_OUTPUTS, "runs/confirm"],
            api_name="delete_run")
    pair = ["runs/left", "runs/right"]
    page.on(page["runs/left"].change, compare, pair, ["runs/comparison"], api_name="compare_runs")
    page.on(page["runs/right"].change, compare, pair, ["runs/comparison"], api_visibility="private")


def refresh(ctx: UIContext, values: Values) -> dict:
    listing = history.runs(ctx.runs_dir)
    names, rows = listing.names(), listing.table()
    def pick(i: int) -> dict:  # a fresh update each: Gradio consumes the dict it is given
        return gr.update(choices=names, value=names[i] if len(names) > i else None)
    return {"runs/table": pd.DataFrame(rows) if rows else pd.DataFrame(columns=TABLE_HEAD),
            "runs/chosen": pick(0), "runs/left": pick(0), "runs/right": pick(1)}


def show(ctx: UIContext, values: Values) -> dict:
    name = values["runs/chosen"]
    if not name:
        return {"runs/details": ""}
    record = history.record(name, ctx.runs_dir, names_only=True)
    return {"runs/details": json.dumps(record, indent=2, default=str)}


def resume(ctx: UIContext, values: Values) -> None:
    started = training.resume(values["runs/chosen"], ctx.runs_dir, names_only=True)
    notify(f"Resuming {started.run.name}; follow it in the Train tab.")


def delete(ctx: UIContext, values: Values) -> dict:
    name = values["runs/chosen"]
    if not name:
        raise StudioError("Pick a run.")
    if not values["runs/confirm"]:
        raise StudioError("Tick 'Yes, delete it' first: deleting removes the run folder and its adapter.")
    notify(history.delete(name, ctx.runs_dir, names_only=True))
    return {**refresh(ctx, values), "runs/confirm": False}


def compare(ctx: UIContext, values: Values) -> dict:
    a, b = values["runs/left"], values["runs/right"]
    if not a or not b:
        return {"runs/comparison": pd.DataFrame(columns=["setting", "run A", "run B"])}
    rows = history.compare(a, b, ctx.runs_dir, names_only=True)
    columns = ["setting", a, b] if a != b else ["setting", a]
    return {"runs/comparison": pd.DataFrame([{"setting": r["setting"], a: r["a"], b: r["b"]} for r in rows],
                                            columns=columns)}
