"""Runs tab: history (status, model, key settings, metrics), open / resume / delete, and a comparison of two
runs' settings and metrics (the guide: change one knob at a time)."""

from __future__ import annotations

import json
from pathlib import Path
import gradio as gr
import pandas as pd

from studio.errors import StudioError
from studio.train.runs import RunDir, list_runs
from studio.train.jobs import live_names
from studio.ui.context import UIContext, ui_errors

KEY_SETTINGS = [("model", "name"), ("lora", "r"), ("lora", "lora_alpha"), ("lora", "use_rslora"),
                ("train", "learning_rate"), ("train", "max_steps"), ("data", "balance")]


def build(ctx: UIContext) -> dict:
    refresh = gr.Button("Refresh", size="sm")
    table = gr.Dataframe(headers=["name", "state", "Val A macro-F1", "data"], label="Runs", interactive=False,
                         elem_id="runs-table")
    with gr.Row():
        chosen = gr.Dropdown(label="Run", choices=[], scale=3, allow_custom_value=True)
        resume = gr.Button("Resume from last checkpoint", scale=1)
        confirm = gr.Checkbox(label="Yes, delete it", value=False, scale=1)
        delete = gr.Button("Delete run", variant="stop", scale=1)
    details = gr.Code(label="run.json", language="json", max_lines=30)
    gr.Markdown("### Compare two runs")
    with gr.Row():
        left = gr.Dropdown(label="Run A", choices=[], allow_custom_value=True)
        right = gr.Dropdown(label="Run B", choices=[], allow_custom_value=True)
    comparison = gr.Dataframe(headers=["setting", "run A", "run B"], label="Settings and metrics that differ",
                              interactive=False)

    def rows():
        runs = list_runs(ctx.runs_dir, live_names=live_names())
        out = []
        for r in runs:
            facts = _facts(r["path"])
            cfg = facts.get("config", {})
            summary = facts.get("eval_summary") or {}
            # what decides between runs first: how good, on which data; then how it was trained
            row = {"name": r["name"], "state": r["state"],
                   "Val A macro-F1": _r(summary.get("val_a", {}).get("macro_f1")),
                   "classic": _r(summary.get("classic_val_a", {}).get("macro_f1")),
                   "Val B minority recall": _r(summary.get("val_b", {}).get("minority_recall")),
                   "data": Path(cfg.get("data", {}).get("path", "")).name,
                   "step": f"{r['step'] or 0}/{r['max_steps'] or '?'}",
                   "final loss": None if r["final_loss"] is None else round(r["final_loss"], 4)}
            for section, key in KEY_SETTINGS:
                row[key if key != "name" else "model"] = cfg.get(section, {}).get(key)
            out.append(row)
        names = [r["name"] for r in runs]
        frame = pd.DataFrame(out) if out else pd.DataFrame(columns=["name", "state", "Val A macro-F1", "data"])
        pick = lambda: gr.update(choices=names, value=names[0] if names else None)  # noqa: E731
        return frame, pick(), pick(), gr.update(choices=names, value=names[1] if len(names) > 1 else None)

    refresh.click(rows, None, [table, chosen, left, right], api_name="list_runs")

    def show(name):
        if not name:
            return ""
        return json.dumps(ctx.run(name).read_run_json(), indent=2, default=str)

    chosen.change(show, chosen, details, api_visibility="private")

    @ui_errors
    def do_resume(name):
        from studio.train.worker import start_training

        job = start_training(runs_dir=ctx.runs_dir, resume=ctx.run(name).path)
        gr.Info(f"Resuming {job.run.name}; follow it in the Train tab.")

    resume.click(do_resume, chosen, None, api_name="resume_run")

    @ui_errors
    def do_delete(name, sure):
        if not name:
            raise StudioError("Pick a run.")
        if not sure:
            raise StudioError("Tick 'Yes, delete it' first: deleting removes the run folder and its adapter.")
        ctx.run(name).delete()
        from studio.models.cache import forget

        forget()
        gr.Info(f"Deleted {name}.")
        return (*rows(), False)

    delete.click(do_delete, [chosen, confirm], [table, chosen, left, right, confirm], api_name="delete_run")

    def compare(a, b):
        if not a or not b:
            return pd.DataFrame(columns=["setting", "run A", "run B"])
        fa, fb = _flatten(_facts_by_name(ctx, a)), _flatten(_facts_by_name(ctx, b))
        keys = sorted(set(fa) | set(fb))
        diff = [{"setting": k, a: fa.get(k), b: fb.get(k)} for k in keys if fa.get(k) != fb.get(k)]
        return pd.DataFrame(diff, columns=["setting", a, b] if a != b else ["setting", a])

    left.change(compare, [left, right], comparison, api_name="compare_runs")
    right.change(compare, [left, right], comparison, api_visibility="private")
    return {"refresh": rows, "refresh_outputs": [table, chosen, left, right]}


def _r(value):
    return None if value is None else round(value, 3)


def _facts(path: str) -> dict:
    try:
        return RunDir(Path(path)).read_run_json()
    except StudioError:
        return {}


def _facts_by_name(ctx: UIContext, name: str) -> dict:
    return ctx.run(name).read_run_json()


def _flatten(facts: dict) -> dict:
    out = {}
    for section, values in facts.get("config", {}).items():
        if isinstance(values, dict):
            for k, v in values.items():
                if k not in ("sha256", "counts"):
                    out[f"{section}.{k}"] = json.dumps(v) if isinstance(v, (dict, list)) else v
        elif section != "name":
            out[section] = values
    for name, metrics in (facts.get("eval_summary") or {}).items():
        for k, v in metrics.items():
            out[f"eval.{name}.{k}"] = _r(v)
    return out
