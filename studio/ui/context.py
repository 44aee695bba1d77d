"""What the tabs share: the runs folder, the upload limit, a tokenizer cache, the last data check."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import gradio as gr

from studio.errors import StudioError
from studio.train.jobs import live_names
from studio.train.runs import ADAPTER_META, list_runs


@dataclass
class UIContext:
    runs_dir: str = "runs"
    max_upload_mb: float = 200.0
    data_rows: int | None = None  # training rows after balancing, from the last data check
    train_lengths: list[int] | None = None  # tokens per formatted training row, from the last data check
    train_classes: list[int] | None = None  # each training row's class, in the order of train_lengths
    lengths_key: tuple | None = None  # (model, max_seq_length) the lengths were counted with
    class_counts: dict | None = None  # input rows per class, from the last data check
    _tokenizers: dict = field(default_factory=dict)

    def tokenizer(self, model_name: str):
        """The chosen model's tokenizer for token counts; (None, note) when it cannot be had (offline hub id)."""
        from studio.models.loading import load_tokenizer

        if model_name not in self._tokenizers:
            try:
                self._tokenizers[model_name] = (load_tokenizer(model_name, log=lambda m: gr.Info(m)), None)
            except StudioError as err:
                return None, f"Token counts skipped: {err}"
        return self._tokenizers[model_name]

    def lengths_for(self, model_name: str, max_seq_length: int) -> list[int] | None:
        """The checked rows' token counts, when they still hold: same model, max_seq_length not raised (rows cut at
        the old limit could be longer now)."""
        if not self.train_lengths or not self.lengths_key:
            return None
        checked_model, checked_max = self.lengths_key
        return self.train_lengths if model_name == checked_model and max_seq_length <= checked_max else None

    def run(self, name: str):
        """A run of this app's runs folder, by name only (a name like '../x' cannot leave the folder)."""
        from studio.train.runs import RunDir

        if not name:
            raise StudioError("Pick a run.")
        return RunDir.open(name, self.runs_dir, inside_only=True)

    def run_choices(self, with_adapter: bool = True) -> list[str]:
        runs = list_runs(self.runs_dir, live_names=live_names())
        return [r["name"] for r in runs if not with_adapter or r["state"] in ("finished", "stopped")
                or (r["state"] in ("failed", "interrupted") and _has_adapter(r["path"]))]

    def newest_run(self) -> str | None:
        """The newest run with an adapter (the Evaluate, Playground and Export tabs preselect it)."""
        choices = self.run_choices()
        return choices[0] if choices else None

    def run_dropdown_update(self, current: str | None = None, seen: str | None = None):
        """The run picker's choices, the newest run selected when it is new since this page last looked (``seen``),
        else the user's own pick; returns (update, the newest run now)."""
        choices = self.run_choices()
        newest = choices[0] if choices else None
        value = newest if newest != seen or current not in choices else current
        return gr.update(choices=choices, value=value), newest


def _has_adapter(path: str) -> bool:
    from pathlib import Path

    return (Path(path) / "adapter" / ADAPTER_META).exists()


def md_list(items) -> str:
    return "\n".join(f"- {i}" for i in items)


def error_box(message: str, levers: list[str] | None = None) -> str:
    text = f"<div class='studio-error'><b>Error.</b> {message}"
    if levers:
        text += "<ol>" + "".join(f"<li>{lv}</li>" for lv in levers) + "</ol>"
    return text + "</div>"


# CLI flags in the engine's messages, as the page's controls are called.
CONTROLS = {"--label-col": "the Label column picker (Data tab)", "--text-col": "the Text column picker (Data tab)",
            "--max-classes": "'Most classes allowed' (Data tab, Split and balancing)",
            "--max-upload-mb": "the app's --max-upload-mb", "--data": "the Data tab's file"}


def for_the_page(message: str) -> str:
    """An engine message with its CLI flags named as the page's controls."""
    for flag, control in CONTROLS.items():
        message = message.replace(f"with {flag}", f"with {control}").replace(flag, control)
    return message


def ui_errors(fn):
    """A handler whose StudioError (bad input, a refused action) reaches the user as a message that stays until it
    is closed, naming the page's controls."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StudioError as err:
            raise gr.Error(for_the_page(str(err)), duration=None) from None

    return wrapper


def as_markdown(lines: list[str]) -> str:
    """Report lines from the engine (the same the CLI prints) as Markdown: list items stay together, other lines
    become paragraphs."""
    def kind(line: str) -> str | None:
        if line.startswith("|"):
            return "table"
        return "list" if line.startswith("- ") or line.split(". ", 1)[0].isdigit() else None

    out: list[str] = []
    for line in lines:
        if out and (kind(line) is None or kind(line) != kind(out[-1])):
            out.append("")
        out.append(line.replace("+ ", "\\+ ", 1) if line.startswith("+ ") else line)
    return "\n".join(out)
