"""Model & LoRA tab: model picker, the guide's presets, every LoRA and trainer setting with its help, live
warnings, the steps estimate, and a sanity check of the untrained model."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from studio.config import PRESETS, RunConfig, apply_preset, rows_per_step, total_steps, validate_config
from studio.errors import StudioError
from studio.estimate.advisor import advise, apply_advice
from studio.estimate.vram import estimate_report
from studio.ui import charts
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
    with gr.Group():
        gr.Markdown("### Will it fit? GPU memory before training")
        with gr.Row():
            gpu = gr.Dropdown(choices=GPU_CHOICES, value="auto", label="GPU to plan for", scale=1,
                              info="This machine's GPU, or the card you will train on (e.g. a free Colab T4).")
            fit_chart = gr.Plot(show_label=False, scale=3)
        fit = gr.Markdown(elem_id="fit-estimate")
        with gr.Row():
            apply_plan = gr.Button("Apply the levers that make it fit", size="sm", elem_id="apply-plan")
            apply_advice_button = gr.Button("Apply the advice", size="sm", elem_id="apply-advice")
        advice = gr.Markdown(elem_id="advice")
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

    def will_it_fit(gpu_choice, *values):
        """Markdown, chart and advice for the form's settings (recomputed at every change)."""
        try:
            config = form.to_config(values)
            est, lengths = _estimate(ctx, config, gpu_choice)
        except StudioError as err:
            return f"_Memory estimate unavailable: {err}_", charts.memory_estimate(None), ""
        report = estimate_report(config, est, lengths)
        advice_items = advise(config, est, train_rows=ctx.data_rows, class_counts=ctx.class_counts,
                              lengths=lengths)
        return fit_markdown(report, lengths), charts.memory_estimate(report["estimate"]), advice_markdown(
            advice_items, ctx)

    fit_inputs = [gpu, *form.components]
    fit_outputs = [fit, fit_chart, advice]
    gpu.change(will_it_fit, fit_inputs, fit_outputs, queue=False, show_progress="hidden", api_visibility="private")
    for comp in form.components:
        comp.change(check, form.components, [estimate, warnings], queue=False, show_progress="hidden",
                    api_visibility="private")
        comp.change(will_it_fit, fit_inputs, fit_outputs, queue=False, show_progress="hidden",
                    api_visibility="private")

    def apply_fitting_plan(gpu_choice, *values):
        config = form.to_config(values)
        est, lengths = _estimate(ctx, config, gpu_choice)
        plan = estimate_report(config, est, lengths)["plan"]
        if not plan:
            raise gr.Error("Nothing to apply: the run already fits, or no GPU size is known (pick one above), or "
                           "even all the levers are not enough.")
        for overrides in plan["overrides"]:
            config = config.replace(overrides)
        gr.Info("Applied: " + "; ".join(plan["steps"]))
        return form.values(config)

    apply_plan.click(apply_fitting_plan, fit_inputs, form.components, api_name="apply_fitting_plan")

    def apply_recipe_advice(gpu_choice, *values):
        config = form.to_config(values)
        try:
            est, lengths = _estimate(ctx, config, gpu_choice)
        except StudioError:
            est, lengths = None, None
        items = advise(config, est, train_rows=ctx.data_rows, class_counts=ctx.class_counts, lengths=lengths)
        if not items:
            raise gr.Error("No preset to apply: check the data first, or the defaults already suit it.")
        gr.Info("Applied: " + ", ".join(a.preset for a in items))
        return form.values(apply_advice(config, items))

    apply_advice_button.click(apply_recipe_advice, fit_inputs, form.components, api_name="apply_advice")

    return SimpleNamespace(model_name=model_fields["name"], check=check, estimate=estimate, warnings=warnings,
                           sanity=sanity, sanity_table=sanity_table, will_it_fit=will_it_fit,
                           fit_inputs=fit_inputs, fit_outputs=fit_outputs)


# (label, GiB as the card reports it); "auto": this machine's GPU.
GPU_CHOICES = [("This machine's GPU", "auto"), ("8 GB card (7.6 GiB)", "7.6"), ("12 GB card (11.7 GiB)", "11.7"),
               ("T4 / 16 GB card (14.7 GiB)", "14.7"), ("24 GB: RTX 3090/4090, L4, A10 (22 GiB)", "22.0"),
               ("40 GB A100 (39.4 GiB)", "39.4"), ("48 GB: L40S, RTX A6000 (44.4 GiB)", "44.4"),
               ("80 GB A100 / H100 (79.2 GiB)", "79.2"), ("H200 (139.8 GiB)", "139.8")]


def _estimate(ctx: UIContext, config: RunConfig, gpu_choice):
    from studio.estimate.vram import estimate_for_config

    lengths = ctx.lengths_for(config.model.name, config.model.max_seq_length)
    gpu_gb = None if gpu_choice in (None, "", "auto") else float(gpu_choice)
    gpu_name = next((label for label, value in GPU_CHOICES if value == gpu_choice), None) if gpu_gb else None
    return estimate_for_config(config, gpu_total_gb=gpu_gb, gpu_name=gpu_name, lengths=lengths), lengths


def fit_markdown(report: dict, lengths: list[int] | None) -> str:
    e = report["estimate"]
    rows = "\n".join(f"| {name} | {gb:.2f} |" for name, gb in e["parts_gb"].items())
    lines = [f"**{report['summary']}**" + ("" if e["gpu_total_gb"] else
                                          " · no GPU on this machine: pick the card you will train on."),
             "", "| part | GiB |", "|---|---|", rows,
             f"| total, with a 3% margin | **{e['peak_reserved_gb']:.2f}** |",
             f"| CUDA context (outside PyTorch's count) | {e['context_gb']:.2f} |", ""]
    lines.append(f"Rows: {len(lengths):,} training rows, the longest {max(lengths)} tokens (from the last data "
                 "check)." if lengths else "Rows: assumed to be max_seq_length tokens each; check the data (tab 1) "
                 "to use your rows' real lengths.")
    if report["levers"]:
        lines += ["", "**It will not fit comfortably. The guide's levers, in order, each alone:**"]
        for i, lv in enumerate(report["levers"], 1):
            why = f" — {lv['why']}" if lv["why"] else ""
            lines.append(f"{i}. {lv['label']}: {e['peak_reserved_gb']:.1f} → {lv['gb']:.1f} GiB ({lv['verdict']})"
                         f"{why}")
        plan = report["plan"]
        lines.append("" if not plan else f"\n**To fit:** {' + '.join(plan['steps'])} → {plan['gb']:.1f} GiB "
                                          f"({plan['verdict']}). The button below applies it.")
        if not plan:
            lines.append("Even all the levers together are not enough: pick a smaller model or a larger GPU.")
    lines += [f"_{n}_" for n in e["notes"]]
    return "\n".join(lines)


def advice_markdown(items, ctx: UIContext) -> str:
    if not items:
        return ("**Recipe advisor:** the current settings suit this data." if ctx.data_rows else
                "**Recipe advisor:** check the data (tab 1) to get advice for its size and class ratio.")
    return "**Recipe advisor** (the guide's presets for your GPU and data):\n" + "\n".join(
        f"- **{a.preset}**: {a.reason}" for a in items)
