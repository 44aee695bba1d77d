"""UI form fields generated from the config dataclasses: one component per field, labelled with the field's name
and its one-line help; values go back through the same coercion as run.json and CLI flags."""

from __future__ import annotations

import json

import gradio as gr

from studio.config import ALL_PROJECTIONS, SECTIONS, RunConfig, field_kind, input_fields


def component(f, value):
    kind, choices, info = field_kind(f), f.metadata.get("choices"), f.metadata["help"]
    if f.name == "name":  # the model: curated choices, or any hub id / local folder typed in
        from studio.models.loading import CURATED_MODELS

        return gr.Dropdown(choices=CURATED_MODELS, value=value, allow_custom_value=True, label="model", info=info,
                           elem_id="model-name")
    if f.name == "target_modules":
        return gr.Dropdown(choices=ALL_PROJECTIONS, value=value, multiselect=True, allow_custom_value=True,
                           label=f.name, info=info)
    if kind is bool:
        return gr.Checkbox(value=value, label=f.name, info=info)
    if choices:
        return gr.Dropdown(choices=choices, value=value, label=f.name, info=info)
    if kind in (int, float):
        return gr.Number(value=value, label=f.name, info=info, precision=0 if kind is int else None)
    if kind is dict:
        return gr.Textbox(value=json.dumps(value) if value else "", label=f.name, info=info,
                          placeholder='{"loftq_bits": 4}' if f.name == "loftq_config" else "")
    return gr.Textbox(value=value, label=f.name, info=info)


class ConfigForm:
    """Components for chosen config fields, in a fixed order, and the conversion between values and a config."""

    def __init__(self):
        self.fields: list[tuple[str, str, gr.components.Component]] = []

    def add(self, section: str, names: list[str] | None = None, skip: tuple[str, ...] = (),
            config: RunConfig | None = None) -> dict[str, gr.components.Component]:
        config = config or RunConfig()
        made = {}
        for f in input_fields(SECTIONS[section]):
            if (names is not None and f.name not in names) or f.name in skip:
                continue
            comp = component(f, getattr(getattr(config, section), f.name))
            self.fields.append((section, f.name, comp))
            made[f.name] = comp
        return made

    @property
    def components(self) -> list:
        return [c for _, _, c in self.fields]

    def to_config(self, values, base: RunConfig | None = None) -> RunConfig:
        overrides: dict = {}
        for (section, name, _), value in zip(self.fields, values):
            if isinstance(value, str) and name in ("label_codes", "loftq_config"):
                value = value.strip() or (None if name == "loftq_config" else {})
            overrides.setdefault(section, {})[name] = value
        return (base or RunConfig()).replace(overrides)

    def values(self, config: RunConfig) -> list:
        out = []
        for section, name, _ in self.fields:
            value = getattr(getattr(config, section), name)
            out.append(json.dumps(value) if isinstance(value, dict) or (name == "loftq_config" and value) else
                       ("" if value is None else value))
        return out
