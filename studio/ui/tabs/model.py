"""Model & LoRA tab: model picker, the guide's presets, every LoRA and trainer setting with its help, live
warnings, the steps estimate, and a sanity check of the untrained model."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from studio.config import PRESETS, RunConfig, apply_preset, rows_per_step, total_steps, validate_config
from studio.errors import StudioError
from studio.ui.context import UIContext, md_list


def build(ctx: UIContext, form, config: RunConfig) -> SimpleNamespace:
    with gr.Row():
        with gr.Column(scale=3):
            model_fields = form.add("model", config=config)
        with gr.Column(scale=2):
            preset = gr.Dropdown(choices=list(PRESETS), value=None, label="Preset (from the guide)",
                                 info="Sets several fields at once; change one knob at a time afterwards.")
            preset_help = gr.Markdown()
            apply = gr.Button("Apply preset", size="sm")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### LoRA")
            form.add("lora", config=config)
        with gr.Column():
            gr.Markdown("### Trainer")
            form.add("train", config=config)
    estimate = gr.Markdown(elem_id="estimate")
    warnings = gr.Markdown(elem_id="settings-warnings")
    with gr.Row():
        sanity = gr.Button("Sanity check: run the untrained model on a few rows")
    sanity_table = gr.Dataframe(label="Untrained model on Val A rows (the guide: check inference before "
                                      "training)", interactive=False, visible=False)

    preset.change(lambda name: PRESETS[name]["description"] if name else "", preset, preset_help,
                  api_visibility="private")

    def apply_preset_values(name, *values):
        if not name:
            raise gr.Error("Pick a preset first.")
        return form.values(apply_preset(form.to_config(values), name))

    apply.click(apply_preset_values, [preset, *form.components], form.components, api_name="apply_preset")

    def check(*values):
        try:
            config = form.to_config(values)
            found = validate_config(config, ctx.data_rows)
        except StudioError as err:
            return "", f"<div class='studio-error'>{err}</div>"
        per_step = rows_per_step(config.train)
        if ctx.data_rows:
            steps = total_steps(config.train, ctx.data_rows)
            epochs = steps * per_step / ctx.data_rows
            est = (f"**{per_step}** rows per optimizer step (batch {config.train.per_device_train_batch_size} × "
                   f"grad accum {config.train.gradient_accumulation_steps} × 1 GPU) · **{steps}** steps · "
                   f"**{epochs:.2f}** epochs over {ctx.data_rows} training rows")
        else:
            est = f"**{per_step}** rows per optimizer step. Check the data to see steps and epochs."
        return est, ("**Warnings**\n" + md_list(found)) if found else "No warnings for these settings."

    for comp in form.components:
        comp.change(check, form.components, [estimate, warnings], queue=False, show_progress="hidden",
                    api_visibility="private")

    return SimpleNamespace(model_name=model_fields["name"], check=check, estimate=estimate, warnings=warnings,
                           sanity=sanity, sanity_table=sanity_table)
