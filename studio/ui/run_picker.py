"""The run pickers of the Evaluate, Playground and Export tabs: the runs with a classifier to use (an adapter, or a
first classifier), newest first; the newest preselected when it is new since the page last looked."""

from __future__ import annotations

import gradio as gr

from studio.door.runs import runs


def run_choices(runs_dir: str) -> list[str]:
    return runs(runs_dir).usable()


def newest_run(runs_dir: str) -> str | None:
    choices = run_choices(runs_dir)
    return choices[0] if choices else None


def picker(runs_dir: str, elem_id: str, **kwargs) -> gr.Dropdown:
    return gr.Dropdown(label="Run", choices=run_choices(runs_dir), value=newest_run(runs_dir), elem_id=elem_id,
                       allow_custom_value=True, **kwargs)


def refresh(runs_dir: str, current: str | None = None, seen: str | None = None):
    """The picker's choices, the newest run selected when it is new since this page last looked (``seen``), else the
    user's own pick; returns (update, the newest run now)."""
    choices = run_choices(runs_dir)
    newest = choices[0] if choices else None
    value = newest if newest != seen or current not in choices else current
    return gr.update(choices=choices, value=value), newest
