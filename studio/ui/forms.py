"""The run config as the page shows it: every config-bearing component registered under its name, "section.field"
(e.g. "train.learning_rate"). ``Form.config`` builds the config once from the form's values by name; ``Form.updates``
shows a config in the form, by name. The page (``studio.ui.page``) holds the form beside the other components.

Generated fields get their widget from the field's kind, choices and widget hint, labelled with the field's name and
its one-line help; values go back through the same coercion as the run record and CLI flags.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any, Callable

import gradio as gr

from studio.config import ALL_PROJECTIONS, CURATED_MODELS, SECTIONS, RunConfig, field_kind, field_optional, input_fields
from studio.door.plan import has_gpu


def component(f, value):
    """A field's widget: its plain label first, then the help and the setting's own name (as in run.json and the
    CLI flags) as the secondary text."""
    kind, choices = field_kind(f), f.metadata.get("choices")
    label, info = f.metadata.get("label") or f.name, f"{f.metadata['help']} · {f.name}"
    widget = f.metadata.get("widget")
    if widget == "model":  # curated choices, or any hub id / local folder typed in
        return gr.Dropdown(choices=CURATED_MODELS, value=value, allow_custom_value=True, label=label, info=info,
                           elem_id="model-name")
    if widget == "modules":
        return gr.Dropdown(choices=ALL_PROJECTIONS, value=value, multiselect=True, allow_custom_value=True,
                           label=label, info=info, elem_id=f"field-{f.name}")
    if f.metadata.get("gpu_only") and not has_gpu():  # shown as what runs here: off, not to be changed, and why
        off = f"No GPU on this machine, so this is off here (it applies on a GPU). · {f.name}"
        if kind is bool:
            return gr.Checkbox(value=False, label=label, interactive=False, elem_id=f"field-{f.name}", info=off)
        return gr.Dropdown(choices=[("off (no GPU)", c) for c in choices or [value]], value=value, label=label,
                           interactive=False, elem_id=f"field-{f.name}", info=off)  # a preset's value still shows off
    if kind is bool:
        return gr.Checkbox(value=value, label=label, info=info, elem_id=f"field-{f.name}")
    if choices:
        return gr.Dropdown(choices=choices, value=value, label=label, info=info, elem_id=f"field-{f.name}")
    if kind in (int, float):
        # a float's arrows move by a step of its own size (the learning rate's by 1e-4, not by 1)
        step = 1 if kind is int else f.metadata.get("step", 10 ** round(math.log10(abs(value))) / 10 if value else 0.01)
        return gr.Number(value=value, label=label, info=info, precision=0 if kind is int else None, step=step,
                         elem_id=f"field-{f.name}")
    if kind is dict:
        return gr.Textbox(value=json.dumps(value) if value else "", label=label, info=info,
                          placeholder=f.metadata.get("placeholder", ""), elem_id=f"field-{f.name}")
    return gr.Textbox(value=value, label=label, info=info, elem_id=f"field-{f.name}")


def _field_to_config(f) -> Callable[[Any], Any]:
    if field_kind(f) is dict:  # a JSON text box: empty means {} (or None where the field may be None)
        return lambda v: (v.strip() or (None if field_optional(f) else {})) if isinstance(v, str) else v
    return lambda v: v


def _field_from_config(f) -> Callable[[Any], Any]:
    if field_kind(f) is dict:
        return lambda v: json.dumps(v) if v else ""
    return lambda v: v


class Form:
    """Config-bearing components by name; the one place where form values become a run config and back."""

    def __init__(self, base: RunConfig | None = None):
        self.base = base or RunConfig()
        self.components: dict[str, gr.components.Component] = {}
        self._to_config: dict[str, Callable] = {}
        self._from_config: dict[str, Callable] = {}
        self._finishers: list[Callable[[RunConfig, dict], None]] = []
        self.generated: list[str] = []  # the keys add_fields made (the Model & LoRA settings, the split settings)

    def add_fields(self, section: str, names: list[str] | None = None,
                   skip: tuple[str, ...] = ()) -> dict[str, gr.components.Component]:
        """Generated widgets for a section's input fields (all, or ``names``), in declaration order; the fields
        marked advanced go into a closed "More settings" group below the others (a shorter page, the same config)."""
        chosen = [f for f in input_fields(SECTIONS[section])
                  if (names is None or f.name in names) and f.name not in skip]
        made = {}
        for group in ([f for f in chosen if not f.metadata.get("advanced")],
                      [f for f in chosen if f.metadata.get("advanced")]):
            if not group:
                continue
            with (gr.Accordion("More settings", open=False) if group[0].metadata.get("advanced")
                  else contextlib.nullcontext()):
                for f in group:
                    comp = component(f, getattr(getattr(self.base, section), f.name))
                    self.register(f"{section}.{f.name}", comp, _field_to_config(f), _field_from_config(f))
                    self.generated.append(f"{section}.{f.name}")
                    made[f.name] = comp
        return made

    def register(self, key: str, comp, to_config: Callable | None = None, from_config: Callable | None = None):
        """A tab's own control for a config field (e.g. the Data tab's label-code table for "data.label_codes")."""
        self.components[key] = comp
        self._to_config[key] = to_config or (lambda v: v)
        self._from_config[key] = from_config or (lambda v: v)
        return comp

    def finisher(self, fn: Callable[[RunConfig, dict], None]) -> None:
        """A step run on every config built from the form (``fn(config, values_by_key)``)."""
        self._finishers.append(fn)

    def __getitem__(self, key: str):
        return self.components[key]

    def __contains__(self, key: str) -> bool:
        return key in self.components

    def config(self, values: dict) -> RunConfig:
        """The run config the form shows, from its values by name (raises StudioError naming a setting whose value
        does not fit it)."""
        values = {key: value for key, value in values.items() if key in self.components}
        overrides: dict = {}
        for key, value in values.items():
            section, name = key.split(".", 1)
            overrides.setdefault(section, {})[name] = self._to_config[key](value)
        config = self.base.replace(overrides)
        for fn in self._finishers:
            fn(config, values)
        return config

    def updates(self, config: RunConfig, keys: list[str] | None = None) -> dict:
        """{key: value} showing ``config`` in the form (every registered field, or ``keys``)."""
        return {key: self._from_config[key](_get(config, key)) for key in (self.components if keys is None else keys)}

    def changed(self, old: RunConfig, new: RunConfig) -> list[str]:
        """The registered fields whose value differs between two configs."""
        return [key for key in self.components if _get(old, key) != _get(new, key)]


def _get(config: RunConfig, key: str):
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)
