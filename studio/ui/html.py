"""HTML the page builds by hand. Every piece of text that comes from a user or a file (file and column names,
labels, codes, texts, the rubric, run names, error messages that quote them) goes through ``escape`` before it
reaches HTML; the panels here escape what they are given."""

from __future__ import annotations

import html


def escape(text) -> str:
    """Text as HTML shows it, never as markup: <, >, &, and both quotes escaped."""
    return html.escape("" if text is None else str(text), quote=True)


def error_box(message: str, levers: list[str] | None = None) -> str:
    text = f"<div class='studio-error'><b>Error.</b> {escape(message)}"
    if levers:
        text += "<ol>" + "".join(f"<li>{escape(lv)}</li>" for lv in levers) + "</ol>"
    return text + "</div>"
