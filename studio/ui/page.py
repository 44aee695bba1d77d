"""The page: every component under a name, the run config's fields as "section.field" (``Form``), the others as
"tab/name"; events wired by name. A handler is a module-level function ``handler(ctx, values) -> {name: value}``:
``values`` holds its inputs by name (``values.config`` is the run config the form shows, built once), and what it
returns goes to the outputs by name (outputs it leaves out keep what they show). Inputs are passed in a fixed
order (the named inputs, then the form's fields when the handler needs the config), so the named API endpoints keep
a stable argument order for gradio_client.

A StudioError (bad input, a refused action) reaches the user as a message that stays until closed, with the CLI's
flags named as the page's controls.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import gradio as gr

from studio.config import RunConfig
from studio.errors import StudioError
from studio.ui.forms import Form
from studio.ui.html import failure

# CLI flags in the engine's messages, as the page's controls are called.
CONTROLS = {"--label-col": "the Label column picker (Data tab)", "--text-col": "the Text column picker (Data tab)",
            "--max-classes": "'Most classes allowed' (Data tab, Split and balancing)",
            "--max-upload-mb": "the app's --max-upload-mb", "--data": "the Data tab's file"}


def for_the_page(message: str) -> str:
    """An engine message with its CLI flags named as the page's controls."""
    for flag, control in CONTROLS.items():
        message = message.replace(f"with {flag}", f"with {control}").replace(flag, control)
    return message


@dataclass
class UIContext:
    """What the handlers share: the runs folder, the upload limit, the facts of the last data check."""

    runs_dir: str = "runs"
    max_upload_mb: float = 200.0
    data: Any = None  # studio.door.data.DataFacts of the last data check


class Values(dict):
    """A handler's inputs by name; ``config``: the run config the form shows (built on first use)."""

    def __init__(self, page: "Page", values: dict, progress=None):
        super().__init__(values)
        self.page, self._progress = page, progress

    @functools.cached_property
    def config(self) -> RunConfig:
        return self.page.form.config(self)

    def progress(self, message: str, fraction: float) -> None:
        if self._progress is not None:
            self._progress(fraction, desc=message)


@dataclass
class Page:
    ctx: UIContext
    form: Form
    components: dict = field(default_factory=dict)

    def add(self, name: str, component):
        if name in self.components or name in self.form:
            raise ValueError(f"'{name}' is already on the page")
        self.components[name] = component
        return component

    def __getitem__(self, name: str):
        return self.form[name] if name in self.form else self.components[name]

    def config_keys(self) -> list[str]:
        return list(self.form.components)

    def on(self, trigger: Callable, handler: Callable, inputs: list[str] = (), outputs: list[str] = (), *,
           config: bool = False, progress: bool = False, selected: bool = False, **event: Any):
        """Wire ``handler`` to ``trigger`` (a component's event method, e.g. ``page["train/start"].click``).
        ``config``: the form's fields are inputs too (``values.config``); ``progress``: Gradio's progress bar
        (``values.progress``); ``selected``: the handler gets the selection (``evt``) of a select event."""
        names = [*inputs, *(self.config_keys() if config else [])]
        run = self.handler(handler, names, progress, selected)
        return trigger(run, [self[n] for n in names], [self[n] for n in outputs], **event)

    def then(self, event, handler: Callable, inputs: list[str] = (), outputs: list[str] = (), *,
             config: bool = False, progress: bool = False, **kwargs: Any):
        """Run ``handler`` after ``event`` (what ``on`` returned) has finished."""
        names = [*inputs, *(self.config_keys() if config else [])]
        return event.then(self.handler(handler, names, progress), [self[n] for n in names],
                          [self[n] for n in outputs], **kwargs)

    def handler(self, handler: Callable, names: list[str], progress: bool = False,
                selected: bool = False) -> Callable:
        """The Gradio function for ``handler``: values in by name, outputs back by name."""
        def call(values: tuple, tracker=None, **extra):
            try:
                out = handler(self.ctx, Values(self, dict(zip(names, values)), tracker), **extra)
            except StudioError as err:
                raise failure(for_the_page(str(err))) from None
            return out if not isinstance(out, dict) else {self[k]: v for k, v in out.items()}

        def run(*args):  # Gradio passes the inputs, then what the signature below asks for
            values, extra = args[:len(names)], args[len(names):]
            if progress:
                return call(values, extra[0] if extra else None)
            return call(values, evt=extra[0] if extra else None) if selected else call(values)

        # Gradio finds its special arguments (a progress tracker, the event's data) among the named positional
        # parameters: the signature names one per input, then those.
        params = [inspect.Parameter(f"input_{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD) for i in range(len(names))]
        if progress:
            params.append(inspect.Parameter("tracker", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
        elif selected:
            params.append(inspect.Parameter("evt", inspect.Parameter.POSITIONAL_OR_KEYWORD))
            run.__annotations__ = {"evt": gr.SelectData}
        run.__signature__ = inspect.Signature(params)
        run.__name__ = handler.__name__
        return run
