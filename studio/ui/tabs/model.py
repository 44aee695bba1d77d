"""Model & LoRA tab: model picker, the guide's presets, every LoRA and trainer setting with its help, live
warnings, the steps estimate, "Will it fit?", and a sanity check of the untrained model."""

from __future__ import annotations

import gradio as gr

from studio.config import PRESETS, RunConfig
from studio.door import plan as planning
from studio.door.evaluation import sanity_check
from studio.door.result import page_line
from studio.errors import StudioError
from studio.ui import charts
from studio.ui.html import error_box, notify
from studio.ui.page import Page, UIContext, Values

# (label, GiB as the card reports it); "auto": this machine's GPU.
GPU_CHOICES = [("This machine's GPU", "auto"), ("8 GB card (7.6 GiB)", "7.6"), ("12 GB card (11.7 GiB)", "11.7"),
               ("T4 / 16 GB card (14.7 GiB)", "14.7"), ("24 GB: RTX 3090/4090, L4, A10 (22 GiB)", "22.0"),
               ("40 GB A100 (39.4 GiB)", "39.4"), ("48 GB: L40S, RTX A6000 (44.4 GiB)", "44.4"),
               ("80 GB A100 / H100 (79.2 GiB)", "79.2"), ("H200 (139.8 GiB)", "139.8")]
PLAN_OUTPUTS = ["model/estimate", "model/warnings"]
FIT_OUTPUTS = ["model/fit", "model/fit_chart", "model/advice", "model/apply_plan"]


def layout(page: Page) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            page.form.add_fields("model")
        with gr.Column(scale=2):
            page.add("model/preset", gr.Dropdown(
                choices=list(PRESETS), value=None, label="Preset (from the guide)", elem_id="preset",
                info="Sets several fields at once; change one knob at a time afterwards."))
            page.add("model/preset_help", gr.Markdown(elem_id="preset-help"))
            page.add("model/apply_preset", gr.Button("Apply preset", size="sm", elem_id="apply-preset"))
    with gr.Row():
        with gr.Column():
            gr.Markdown("### LoRA")
            page.form.add_fields("lora")
        with gr.Column():
            gr.Markdown("### Trainer")
            page.form.add_fields("train")
    page.add("model/estimate", gr.Markdown(elem_id="estimate"))
    page.add("model/warnings", gr.Markdown(elem_id="settings-warnings"))
    _will_it_fit_layout(page)
    with gr.Row():
        page.add("model/sanity", gr.Button("Sanity check: run the untrained model on a few rows"))
    page.add("model/sanity_table", gr.Dataframe(
        label="Untrained model on Val A rows (the guide: check inference before training). 'scored' picks among the "
              "codes; 'generated' is its free text, '(invalid)' when that does not start with a code: teaching it to "
              "is what training is for.", interactive=False, visible=False, wrap=False,
        column_widths=["14%", "14%", "9%", "14%", "14%", "35%"]))
    # whether the last applied change touched the data settings (the Data tab checks again)
    page.add("model/data_changed", gr.State(False))


def _will_it_fit_layout(page: Page) -> None:
    with gr.Group():
        gr.Markdown("### Will it fit? GPU memory before training")
        with gr.Row():
            page.add("model/gpu", gr.Dropdown(
                choices=GPU_CHOICES, value="auto", label="GPU to plan for", scale=1, elem_id="gpu-choice",
                info="This machine's GPU, or the card you will train on (e.g. a free Colab T4)."))
            page.add("model/fit_chart", gr.Plot(show_label=False, scale=3, elem_id="fit-chart"))
        page.add("model/fit", gr.Markdown(elem_id="fit-estimate"))
    with gr.Row():  # outside the group, where buttons look like buttons
        page.add("model/apply_plan", gr.Button("Apply the levers that make it fit", size="sm", elem_id="apply-plan"))
        page.add("model/apply_advice", gr.Button("Apply the advice", size="sm", elem_id="apply-advice"))
    page.add("model/advice", gr.Markdown(elem_id="advice"))


def settings(page: Page) -> list[str]:
    """The generated settings: the split settings of the Data tab, and this tab's."""
    return list(page.form.generated)


def changes(page: Page) -> list[str]:
    return [*settings(page), "model/preset_help", "model/data_changed"]


def wire(page: Page) -> dict:
    """This tab's events; returns the events that change settings (the Data tab checks again after them)."""
    page.on(page["model/preset"].change, show_preset_help, ["model/preset"], ["model/preset_help"],
            api_visibility="private")
    quiet = dict(queue=False, show_progress="hidden", api_visibility="private")
    page.on(page["model/gpu"].change, will_it_fit, ["model/gpu"], FIT_OUTPUTS, config=True, **quiet)
    for key in settings(page):
        page.on(page[key].change, check, [], PLAN_OUTPUTS, config=True, **quiet)
        page.on(page[key].change, will_it_fit, ["model/gpu"], FIT_OUTPUTS, config=True, **quiet)
    page.on(page["model/sanity"].click, run_sanity, [], ["model/sanity_table"], config=True,
            api_name="sanity_check")
    return {"preset": page.on(page["model/apply_preset"].click, apply_preset, ["model/preset"], changes(page),
                              config=True, api_name="apply_preset"),
            "plan": page.on(page["model/apply_plan"].click, apply_fitting_plan, ["model/gpu"], changes(page),
                            config=True, api_name="apply_fitting_plan"),
            "advice": page.on(page["model/apply_advice"].click, apply_recipe_advice, ["model/gpu"], changes(page),
                              config=True, api_name="apply_advice")}


def show_preset_help(ctx: UIContext, values: Values) -> dict:
    return {"model/preset_help": planning.preset_help(values["model/preset"])}


def fill(values: Values, new: RunConfig, what: str) -> dict:
    """Every generated setting shown as in ``new``, and a message that lists what changed."""
    form, old = values.page.form, values.config
    changed = [k for k in form.changed(old, new) if k in form.generated]
    listed = "; ".join(f"{form[k].label} ({k}): {_show(_value(old, k))} → {_show(_value(new, k))}"
                       for k in changed) or "nothing (the settings already matched)"
    notify(f"{what} changed: {listed}")
    return {**form.updates(new, form.generated), "model/preset_help": f"**{what} changed:** {page_line(listed)}",
            "model/data_changed": any(k.startswith("data.") for k in changed)}


def apply_preset(ctx: UIContext, values: Values) -> dict:
    name = values["model/preset"]
    return fill(values, planning.with_preset(values.config, name), f"Preset '{name}'")


def apply_fitting_plan(ctx: UIContext, values: Values) -> dict:
    gpu_gb, gpu_name = _gpu(values["model/gpu"])
    return fill(values, planning.with_fitting_plan(values.config, ctx.data, gpu_gb, gpu_name), "The fitting plan")


def apply_recipe_advice(ctx: UIContext, values: Values) -> dict:
    gpu_gb, gpu_name = _gpu(values["model/gpu"])
    new, presets = planning.with_advice(values.config, ctx.data, gpu_gb, gpu_name)
    return fill(values, new, "The advice (" + ", ".join(presets) + ")")


def check(ctx: UIContext, values: Values) -> dict:
    """The recipe the run will use and the guide's warnings (a setting that cannot work, in the warnings panel)."""
    try:
        planned = planning.plan(values.config, ctx.data)
    except StudioError as err:
        return {"model/estimate": "", "model/warnings": error_box(str(err))}
    return {"model/estimate": planned.markdown(), "model/warnings": planned.warnings_markdown()}


def will_it_fit(ctx: UIContext, values: Values) -> dict:
    """Markdown, chart and advice for the form's settings (recomputed at every change); on a machine without a
    GPU, the CPU's view unless a card is picked to plan for."""
    try:
        fit = planning.will_it_fit(values.config, ctx.data, *_gpu(values["model/gpu"]))
    except StudioError as err:
        return {"model/fit": f"_Memory estimate unavailable: {page_line(str(err))}_",
                "model/fit_chart": gr.update(value=charts.memory_estimate(None), visible=False),
                "model/advice": "", "model/apply_plan": gr.update(value="No estimate to plan from", interactive=False)}
    label, applicable = fit.plan_button()  # "apply the levers that make it fit" only where there are some
    # no chart to draw (the CPU's view, no card picked): none shown, rather than an empty frame
    return {"model/fit": fit.markdown(), "model/advice": fit.advice_markdown(),
            "model/fit_chart": gr.update(value=charts.memory_estimate(fit.chart), visible=fit.chart is not None),
            "model/apply_plan": gr.update(value=label, interactive=applicable)}


def run_sanity(ctx: UIContext, values: Values):
    return {"model/sanity_table": gr.update(value=sanity_check(values.config, log=notify),
                                            visible=True)}


def _gpu(choice) -> tuple[float | None, str | None]:
    """(GiB, card name) of the picked GPU; (None, None) for this machine's."""
    if choice in (None, "", "auto"):
        return None, None
    label = next((label for label, value in GPU_CHOICES if value == choice), None)
    return float(choice), label.rsplit(" (", 1)[0] if label else None  # the card; the estimate states its size


def _value(config: RunConfig, key: str):
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def _show(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
