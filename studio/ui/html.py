"""HTML the page builds by hand, and its messages. Every piece of text that comes from a user or a file (file and
column names, labels, codes, texts, the rubric, run names, error messages that quote them) goes through the door's
one escaping helper (``studio.door.result``) before it reaches HTML or Markdown: the panels and the messages here
escape what they are given (Gradio renders its messages as HTML)."""

from __future__ import annotations

import gradio as gr

from studio.door.result import escape_html as escape


def error_box(message: str, levers: list[str] | None = None) -> str:
    text = f"<div class='studio-error'><b>Error.</b> {escape(message)}"
    if levers:
        text += "<ol>" + "".join(f"<li>{escape(lv)}</li>" for lv in levers) + "</ol>"
    return text + "</div>"


def notify(message: str) -> None:
    """A message in the page's corner (it fades), as text."""
    gr.Info(escape(message))


def failure(message: str) -> gr.Error:
    """An error message that stays until it is closed, as text."""
    return gr.Error(escape(message), duration=None)
