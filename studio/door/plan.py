"""Plan a run before it starts: the recipe it will use (auto settings decided, rows per step, steps, the time it will
take), the guide's warnings, and "Will it fit?" (the GPU's memory, or on a machine without one the CPU's view);
the guide's presets, the levers that make it fit and the recipe advisor's choice applied to a config."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from studio.config import PRESETS, RunConfig, TrainSpec, apply_preset, rows_per_step, total_steps
from studio.door.data import DataFacts, check_data
from studio.door.result import Result, as_markdown, md_list, page_line
from studio.errors import StudioError
from studio.estimate.advisor import Advice, advise, apply_advice
from studio.estimate.model_shape import read_shape
from studio.estimate.plan import check_config, preview, row_cost
from studio.estimate.ram import estimate_cpu_ram
from studio.estimate.recipe import Resolved, step_warnings
from studio.estimate.speed import time_estimate
from studio.estimate.vram import estimate_for_config, estimate_lines, estimate_report
from studio.machine import device_guess, machine_ram_gb
from studio.models.loading import Backend, cpu_computes_bf16, effective_settings


def has_gpu() -> bool:
    """Whether this machine trains on a GPU (CUDA), by what the page can tell without loading torch."""
    return device_guess() == "cuda"


def rows_per_step_words(train: TrainSpec, gpus: int = 1, bold: bool = False) -> str:
    """"16 rows per optimizer step (batch 16 × grad accum 1 × 1 GPU)": the guide's formula, with the numbers (on a
    CPU without the GPUs)."""
    n = rows_per_step(train, gpus)
    devices = f" × {gpus} GPU{'s' if gpus > 1 else ''}" if gpus > 1 or device_guess() == "cuda" else ""
    return (f"{f'**{n}**' if bold else n} rows per optimizer step (batch {train.per_device_train_batch_size} × grad "
            f"accum {train.gradient_accumulation_steps}{devices})")


@dataclass
class Plan(Result):
    resolved: Resolved
    warnings: list[str]
    train_rows: int | None
    time: str = ""

    def lines(self) -> list[str]:
        t = self.resolved.config.train
        head = rows_per_step_words(t, bold=True)
        if self.train_rows:
            steps = total_steps(t, self.train_rows)
            head += (f" · **{steps}** steps · **{steps * rows_per_step(t) / self.train_rows:.2f}** epochs over "
                     f"{self.train_rows} training rows. {self.time}")
        else:
            head += ". Check the data to see steps, epochs and the time it will take."
        lines = [head]
        if self.resolved.choices:
            lines += ["**Decided for you** (settings left on auto):"] + [f"- {c}" for c in self.resolved.choices]
        return lines

    def warnings_markdown(self) -> str:
        return ("**Warnings**\n" + md_list(self.warnings)) if self.warnings else "No warnings for these settings."


def plan(config: RunConfig, facts: DataFacts | None = None) -> Plan:
    """The recipe ``config`` will run with on this machine, for the last checked data (raises StudioError for
    settings that cannot work)."""
    rows = facts.rows if facts else None
    lengths = facts.lengths_for(config.model.name, config.model.max_seq_length) if facts else None
    warnings = check_config(config)  # raises for settings that cannot work, before anything is previewed
    resolved = preview(config, rows, lengths, facts.classes if facts else None)
    if rows:  # the run's length as this plan has it: the micro-batch its rows' lengths allow
        warnings += step_warnings(resolved.config.train, rows)
    t = resolved.config.train
    cost = row_cost(lengths, facts.classes if facts else None, t.seed)
    row_tokens = cost(t.per_device_train_batch_size, rows_per_step(t)) if cost else None
    return Plan(resolved, warnings, rows, time_estimate(resolved, config.model.name, rows, row_tokens) if rows else "")


@dataclass
class Fit(Result):
    """"Will it fit?": the estimate against a GPU (this machine's or a card picked), the levers, the advice; or, on a
    machine without a GPU and no card picked, what the CPU will do."""

    report: dict | None
    advice: list[Advice] = field(default_factory=list)
    lengths: list[int] | None = None
    cpu_lines: list[str] | None = None
    rows_known: bool = False

    def lines(self) -> list[str]:
        if self.cpu_lines is not None:
            return self.cpu_lines
        return estimate_lines(self.report, self.lengths, self.advice)

    def plan_button(self) -> tuple[str, bool]:
        """What the "apply the levers" button says, and whether there is anything to apply."""
        if not self.report or not self.report["estimate"].get("gpu_total_gb"):
            return "No GPU to plan for: pick a card above", False
        if self.report.get("plan"):
            return "Apply the levers that make it fit", True
        if self.report["estimate"].get("verdict") == "fits":
            return "It fits: no lever needed", False
        return "No lever is enough: see the estimate", False

    def markdown(self) -> str:
        if self.cpu_lines is not None:
            return "\n".join(page_line(line) for line in self.cpu_lines)
        return f"**{page_line(self.report['summary'])}**\n\n" + as_markdown(estimate_lines(self.report, self.lengths))

    def advice_markdown(self) -> str:
        if not self.advice:
            return ("**Recipe advisor:** the current settings suit this data." if self.rows_known else
                    "**Recipe advisor:** check the data (tab 1) to get advice for its size and class ratio.")
        return "**Recipe advisor** (the guide's presets for your GPU and data):\n" + "\n".join(
            f"- **{a.preset}**: {page_line(a.reason)}" for a in self.advice)

    @property
    def chart(self) -> dict | None:
        """The estimate's parts for the stacked chart (None for the CPU's view)."""
        return None if self.report is None else self.report["estimate"]

    def to_dict(self) -> dict:
        return {**(self.report or {}), "advice": [{"preset": a.preset, "reason": a.reason} for a in self.advice]}


def will_it_fit(config: RunConfig, facts: DataFacts | None = None, gpu_gb: float | None = None,
                gpu_name: str | None = None) -> Fit:
    """The estimate for ``config`` against ``gpu_gb`` (default: this machine's GPU); on a machine without a GPU and
    no card given, the CPU's view."""
    rows = facts.rows if facts else None
    counts = facts.class_counts if facts else None
    lengths = facts.lengths_for(config.model.name, config.model.max_seq_length) if facts else None
    if gpu_gb is None and device_guess() == "cpu":
        advice = advise(config, None, train_rows=rows, class_counts=counts)
        return Fit(None, advice, lengths, cpu_view(config, lengths, facts.classes if facts else None), rows is not None)
    estimate = estimate_for_config(config, gpu_total_gb=gpu_gb, gpu_name=gpu_name, lengths=lengths)
    report = estimate_report(config, estimate, lengths)
    advice = advise(config, estimate, train_rows=rows, class_counts=counts, lengths=lengths)
    return Fit(report, advice, lengths, rows_known=rows is not None)


def estimate(config: RunConfig, gpu_gb: float | None = None, use_data: bool = True,
             log=print) -> Fit:
    """``python -m studio estimate``: the estimate with the data's real row lengths (unless ``use_data`` is off or
    the data cannot be read, then every row is assumed max_seq_length tokens)."""
    facts, note = None, None
    if use_data:
        try:
            facts = check_data(config, config.model.name, log=log).facts
        except StudioError as err:
            note = f"data not used ({err}); assuming every row is max_seq_length tokens"
    lengths = facts.lengths if facts else None
    estimate_ = estimate_for_config(config, gpu_total_gb=gpu_gb, lengths=lengths)
    report = estimate_report(config, estimate_, lengths)
    advice = advise(config, estimate_, train_rows=facts.rows if facts else None,
                    class_counts=facts.class_counts if facts else None, lengths=lengths)
    if note:
        report["estimate"]["notes"].append(note)
    return Fit(report, advice, lengths, rows_known=facts is not None)


def cpu_view(config: RunConfig, lengths: list[int] | None = None, classes: list[int] | None = None) -> list[str]:
    """What training on this machine's CPU will do: the fallbacks (before Start, not only in the log), the compute,
    the memory it will take of what the machine has."""
    total = machine_ram_gb()
    lines = [f"**No GPU on this machine: training runs on its CPU** ({os.cpu_count()} cores"
             + (f", {total:.0f} GiB of RAM)." if total else ").")
             + " Pick the card you will train on above to plan its GPU memory instead."]
    try:
        shape, _ = read_shape(config.model.name)
    except (StudioError, OSError):
        shape = None
    bf16 = cpu_computes_bf16(config.model)
    if shape is not None:
        planned = preview(config, None, lengths, classes).config
        ram = estimate_cpu_ram(shape, planned.train.per_device_train_batch_size, lengths,
                               config.model.max_seq_length, planned.lora.use_gradient_checkpointing != "false", total,
                               bfloat16=bf16)
        lines.append(f"- Memory: {ram.summary()}" + ("" if lengths else "; check the data for its real row lengths")
                     + f", with micro-batches of {planned.train.per_device_train_batch_size} rows.")
    lines += [f"- {n}" for n in cpu_fallbacks(config)]
    lines.append("- Gradient checkpointing is off on a CPU when left on auto and the memory allows it (it costs ~30% "
                 "more compute).")
    why = ("the Number format setting" if config.model.dtype != "auto" else "this CPU has AVX-512" if bf16 else
           "this CPU has no AVX-512, which bfloat16 needs")
    weights = " over float32 weights" if config.model.dtype == "auto" else ""
    lines.append(f"- Compute: bfloat16{weights} ({why})." if bf16 else
                 f"- Compute: float32 ({why}): a row's activations take 2.3 times the memory they take in bfloat16, "
                 "so the micro-batches that fit are smaller.")
    return lines


def cpu_fallbacks(config: RunConfig) -> list[str]:
    """The settings a CPU cannot honour, and what it uses instead (the notices the run will log)."""
    backend = Backend("transformers", "no CUDA GPU", "cpu")
    effective_settings(config.model, config.train, backend)
    return backend.notices


def with_preset(config: RunConfig, name: str) -> RunConfig:
    if not name:
        raise StudioError("Pick a preset first.")
    return apply_preset(config, name)


def preset_help(name: str | None) -> str:
    return PRESETS[name]["description"] if name in PRESETS else ""


def with_fitting_plan(config: RunConfig, facts: DataFacts | None, gpu_gb: float | None,
                      gpu_name: str | None = None) -> RunConfig:
    """``config`` with the guide's levers applied, in order, until the run fits the GPU."""
    report = will_it_fit(config, facts, gpu_gb, gpu_name).report
    planned = report and report["plan"]
    if not planned:
        raise StudioError("Nothing to apply: the run already fits, or no GPU size is known (pick one above), or "
                          "even all the levers are not enough.")
    for overrides in planned["overrides"]:
        config = config.replace(overrides)
    return config


def with_advice(config: RunConfig, facts: DataFacts | None, gpu_gb: float | None,
                gpu_name: str | None = None) -> tuple[RunConfig, list[str]]:
    """``config`` with the recipe advisor's presets applied; returns (config, the presets' names)."""
    try:
        advice = will_it_fit(config, facts, gpu_gb, gpu_name).advice
    except StudioError:
        advice = advise(config, None, train_rows=facts.rows if facts else None,
                        class_counts=facts.class_counts if facts else None)
    if not advice:
        raise StudioError("No preset to apply: check the data first, or the defaults already suit it.")
    return apply_advice(config, advice), [a.preset for a in advice]
