"""Model & LoRA tab: model picker, the guide's presets, every LoRA and trainer setting with its help, live
warnings, the steps estimate, "Will it fit?", and a sanity check of the untrained model."""

from __future__ import annotations

import gradio as gr

from studio.config import PRESETS, RunConfig, apply_preset, rows_per_step, total_steps, validate_config
from studio.errors import StudioError
from studio.estimate.advisor import advise, apply_advice
from studio.estimate.vram import estimate_lines, estimate_report
from studio.ui import charts
from studio.ui.context import UIContext, as_markdown, md_list, ui_errors
from studio.ui.forms import Form

# (label, GiB as the card reports it); "auto": this machine's GPU.
GPU_CHOICES = [("This machine's GPU", "auto"), ("8 GB card (7.6 GiB)", "7.6"), ("12 GB card (11.7 GiB)", "11.7"),
               ("T4 / 16 GB card (14.7 GiB)", "14.7"), ("24 GB: RTX 3090/4090, L4, A10 (22 GiB)", "22.0"),
               ("40 GB A100 (39.4 GiB)", "39.4"), ("48 GB: L40S, RTX A6000 (44.4 GiB)", "44.4"),
               ("80 GB A100 / H100 (79.2 GiB)", "79.2"), ("H200 (139.8 GiB)", "139.8")]


def build(ctx: UIContext, form: Form) -> dict:
    with gr.Row():
        with gr.Column(scale=3):
            form.add_fields("model")
        with gr.Column(scale=2):
            preset = gr.Dropdown(choices=list(PRESETS), value=None, label="Preset (from the guide)",
                                 info="Sets several fields at once; change one knob at a time afterwards.",
                                 elem_id="preset")
            preset_help = gr.Markdown(elem_id="preset-help")
            apply = gr.Button("Apply preset", size="sm", elem_id="apply-preset")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### LoRA")
            form.add_fields("lora")
        with gr.Column():
            gr.Markdown("### Trainer")
            form.add_fields("train")
    estimate = gr.Markdown(elem_id="estimate")
    warnings = gr.Markdown(elem_id="settings-warnings")
    with gr.Group():
        gr.Markdown("### Will it fit? GPU memory before training")
        with gr.Row():
            gpu = gr.Dropdown(choices=GPU_CHOICES, value="auto", label="GPU to plan for", scale=1,
                              info="This machine's GPU, or the card you will train on (e.g. a free Colab T4).",
                              elem_id="gpu-choice")
            fit_chart = gr.Plot(show_label=False, scale=3)
        fit = gr.Markdown(elem_id="fit-estimate")
    with gr.Row():  # outside the group, where buttons look like buttons
        apply_plan = gr.Button("Apply the levers that make it fit", size="sm", elem_id="apply-plan")
        apply_advice_button = gr.Button("Apply the advice", size="sm", elem_id="apply-advice")
    advice = gr.Markdown(elem_id="advice")
    with gr.Row():
        sanity = gr.Button("Sanity check: run the untrained model on a few rows")
    sanity_table = gr.Dataframe(label="Untrained model on Val A rows (the guide: check inference before "
                                      "training). 'scored' picks among the codes; 'generated' is its free text, "
                                      "'(invalid)' when that does not start with a code: teaching it to is what "
                                      "training is for.", interactive=False, visible=False, wrap=False,
                                column_widths=["14%", "14%", "9%", "14%", "14%", "35%"])
    settings = [form[k] for k in form.generated]  # the split settings of the Data tab, and this tab's

    preset.change(lambda name: PRESETS[name]["description"] if name else "", preset, preset_help,
                  api_visibility="private")

    data_changed = gr.State(False)  # whether the last applied change touched the data settings (the Data tab rechecks)

    def fill(old: RunConfig, new: RunConfig, what: str) -> dict:
        """Every generated setting shown as in ``new``, and a message that lists what changed."""
        changed = [k for k in form.changed(old, new) if k in form.generated]
        listed = "; ".join(f"{form[k].label} ({k}): {_show(_value(old, k))} → {_show(_value(new, k))}"
                           for k in changed) or "nothing (the settings already matched)"
        gr.Info(f"{what} changed: {listed}")
        return {**form.updates(new, form.generated), preset_help: f"**{what} changed:** {listed}",
                data_changed: any(k.startswith("data.") for k in changed)}

    @ui_errors
    def apply_preset_values(data):
        name = data[preset]
        if not name:
            raise StudioError("Pick a preset first.")
        old = form.config(data)
        return fill(old, apply_preset(old, name), f"Preset '{name}'")

    fn, inputs = form.bind(apply_preset_values, preset)
    changes = [*settings, preset_help, data_changed]
    preset_event = apply.click(fn, inputs, changes, api_name="apply_preset")

    def check(data):
        from studio.train.recipe import preview, time_estimate

        try:
            config = form.config(data)
            found = validate_config(config, ctx.data_rows)
            resolved = preview(config, ctx.data_rows, ctx.lengths_for(config.model.name, config.model.max_seq_length),
                               ctx.train_classes)
        except StudioError as err:
            return {estimate: "", warnings: f"<div class='studio-error'>{err}</div>"}
        train = resolved.config.train
        per_step = rows_per_step(train)
        est = (f"**{per_step}** rows per optimizer step (batch {train.per_device_train_batch_size} × grad accum "
               f"{train.gradient_accumulation_steps} × 1 GPU)")
        if ctx.data_rows:
            steps = total_steps(train, ctx.data_rows)
            est += (f" · **{steps}** steps · **{steps * per_step / ctx.data_rows:.2f}** epochs over {ctx.data_rows} "
                    f"training rows. {time_estimate(resolved, config.model.name, ctx.data_rows)}")
        else:
            est += ". Check the data to see steps, epochs and the time it will take."
        if resolved.choices:
            est += "\n\n**Decided for you** (settings left on auto):\n" + md_list(resolved.choices)
        return {estimate: est, warnings: ("**Warnings**\n" + md_list(found)) if found else
                "No warnings for these settings."}

    def will_it_fit(data):
        """Markdown, chart and advice for the form's settings (recomputed at every change); on a machine without a
        GPU, the CPU's view (what falls back, what it will take) unless a card is picked to plan for."""
        from studio.train.recipe import device_guess

        try:
            config = form.config(data)
            if data[gpu] in (None, "", "auto") and device_guess() == "cpu":
                items = advise(config, None, train_rows=ctx.data_rows, class_counts=ctx.class_counts)
                lengths = ctx.lengths_for(config.model.name, config.model.max_seq_length)
                return {fit: cpu_markdown(config, lengths, ctx.train_classes), fit_chart: charts.memory_estimate(None),
                        advice: advice_markdown(items, ctx)}
            est, lengths = _estimate(ctx, config, data[gpu])
        except StudioError as err:
            return {fit: f"_Memory estimate unavailable: {err}_", fit_chart: charts.memory_estimate(None),
                    advice: ""}
        report = estimate_report(config, est, lengths)
        items = advise(config, est, train_rows=ctx.data_rows, class_counts=ctx.class_counts, lengths=lengths)
        return {fit: f"**{report['summary']}**\n\n" + as_markdown(estimate_lines(report, lengths)),
                fit_chart: charts.memory_estimate(report["estimate"]), advice: advice_markdown(items, ctx)}

    check_fn, check_inputs = form.bind(check)
    fit_fn, fit_inputs = form.bind(will_it_fit, gpu)
    fit_outputs = [fit, fit_chart, advice]
    gpu.change(fit_fn, fit_inputs, fit_outputs, queue=False, show_progress="hidden", api_visibility="private")
    for comp in settings:
        comp.change(check_fn, check_inputs, [estimate, warnings], queue=False, show_progress="hidden",
                    api_visibility="private")
        comp.change(fit_fn, fit_inputs, fit_outputs, queue=False, show_progress="hidden", api_visibility="private")

    @ui_errors
    def apply_fitting_plan(data):
        config = form.config(data)
        est, lengths = _estimate(ctx, config, data[gpu])
        plan = estimate_report(config, est, lengths)["plan"]
        if not plan:
            raise StudioError("Nothing to apply: the run already fits, or no GPU size is known (pick one above), or "
                              "even all the levers are not enough.")
        new = config
        for overrides in plan["overrides"]:
            new = new.replace(overrides)
        return fill(config, new, "The fitting plan")

    fn, inputs = form.bind(apply_fitting_plan, gpu)
    plan_event = apply_plan.click(fn, inputs, changes, api_name="apply_fitting_plan")

    @ui_errors
    def apply_recipe_advice(data):
        config = form.config(data)
        try:
            est, lengths = _estimate(ctx, config, data[gpu])
        except StudioError:
            est, lengths = None, None
        items = advise(config, est, train_rows=ctx.data_rows, class_counts=ctx.class_counts, lengths=lengths)
        if not items:
            raise StudioError("No preset to apply: check the data first, or the defaults already suit it.")
        return fill(config, apply_advice(config, items), "The advice (" + ", ".join(a.preset for a in items) + ")")

    fn, inputs = form.bind(apply_recipe_advice, gpu)
    advice_event = apply_advice_button.click(fn, inputs, changes, api_name="apply_advice")

    @ui_errors
    def run_sanity(data):
        from studio.evaluate.evaluator import sanity_check

        table = sanity_check(form.config(data), log=lambda msg: gr.Info(msg))
        return gr.update(value=table, visible=True)

    fn, inputs = form.bind(run_sanity)
    sanity.click(fn, inputs, sanity_table, api_name="sanity_check")

    return {"check": check_fn, "check_inputs": check_inputs, "check_outputs": [estimate, warnings],
            "changes": [preset_event, plan_event, advice_event], "data_changed": data_changed,
            "fit": fit_fn, "fit_inputs": fit_inputs, "fit_outputs": fit_outputs}


def _value(config: RunConfig, key: str):
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def _show(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _estimate(ctx: UIContext, config: RunConfig, gpu_choice):
    from studio.estimate.vram import estimate_for_config

    lengths = ctx.lengths_for(config.model.name, config.model.max_seq_length)
    gpu_gb = None if gpu_choice in (None, "", "auto") else float(gpu_choice)
    label = next((label for label, value in GPU_CHOICES if value == gpu_choice), None) if gpu_gb else None
    gpu_name = label.rsplit(" (", 1)[0] if label else None  # the card; the estimate states its size itself
    return estimate_for_config(config, gpu_total_gb=gpu_gb, gpu_name=gpu_name, lengths=lengths), lengths


def cpu_markdown(config: RunConfig, lengths: list[int] | None = None, classes: list[int] | None = None) -> str:
    """What training on this machine's CPU will do: the fallbacks (before Start, not only in the log), the compute,
    the memory it will take of what the machine has."""
    import os

    from studio.estimate.model_shape import read_shape
    from studio.estimate.ram import estimate_cpu_ram, machine_ram_gb
    from studio.models.loading import Backend, effective_settings
    from studio.train.recipe import preview

    backend = Backend("transformers", "no CUDA GPU", "cpu")
    effective_settings(config.model, config.train, backend)
    total = machine_ram_gb()
    lines = [f"**No GPU on this machine: training runs on its CPU** ({os.cpu_count()} cores"
             + (f", {total:.0f} GiB of RAM)." if total else ").")
             + " Pick the card you will train on above to plan its GPU memory instead."]
    try:
        shape, _ = read_shape(config.model.name)
    except (StudioError, OSError):
        shape = None
    if shape is not None:
        planned = preview(config, None, lengths, classes).config
        ram = estimate_cpu_ram(shape, planned.train.per_device_train_batch_size, lengths,
                               config.model.max_seq_length, planned.lora.use_gradient_checkpointing != "false", total)
        lines.append(f"- Memory: {ram.summary()}" + ("" if lengths else "; check the data for its real row lengths")
                     + f", with micro-batches of {planned.train.per_device_train_batch_size} rows.")
    lines += [f"- {n}" for n in backend.notices]
    lines.append("- Gradient checkpointing is off on a CPU when left on auto and the memory allows it (it costs ~30% "
                 "more compute); compute runs in bfloat16 where the CPU has it (AVX-512 BF16, AMX).")
    return "\n".join(lines)


def advice_markdown(items, ctx: UIContext) -> str:
    if not items:
        return ("**Recipe advisor:** the current settings suit this data." if ctx.data_rows else
                "**Recipe advisor:** check the data (tab 1) to get advice for its size and class ratio.")
    return "**Recipe advisor** (the guide's presets for your GPU and data):\n" + "\n".join(
        f"- **{a.preset}**: {a.reason}" for a in items)
