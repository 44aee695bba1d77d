"""Data tab: upload or sample, preview, columns, rubric, label codes, split and balance, class-count chart."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd

from studio.config import SAMPLE_DATA, SAMPLE_RUBRIC, RunConfig
from studio.data.prepare import keep_upload, prepare_data
from studio.data.table import load_table
from studio.errors import StudioError
from studio.ui import charts
from studio.ui.context import UIContext, md_list

FILE_TYPES = [".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".xlsx", ".xls"]
SPLIT_FIELDS = ["val_fraction", "val_b_per_class", "split_seed", "balance", "minority_share",
                "undersample_majority", "prompt_format", "drop_duplicates", "header", "delimiter", "max_classes"]


def build(ctx: UIContext, form, config) -> SimpleNamespace:
    recipe = config.data
    sample_rubric = SAMPLE_RUBRIC.read_text(encoding="utf-8").strip()
    is_sample = Path(recipe.path).resolve() == SAMPLE_DATA.resolve()
    path = gr.State(recipe.path)
    gr.Markdown("Upload a labelled file, or start from the sample forum posts (Rules Question vs Other, about "
                "90/10). Check the columns, the rubric and the label codes, then **Check data**.")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label="Data file (CSV, TSV, JSONL, JSON, Parquet, Excel)", file_types=FILE_TYPES,
                             elem_id="data-upload")
            sample = gr.Button("Use the sample data", size="sm")
            source = gr.Markdown(f"Using **{Path(recipe.path).name}**" + (" (sample)." if is_sample else "."))
        with gr.Column(scale=3):
            with gr.Row():
                columns, text_guess, label_guess = _columns(recipe.path, ctx)
                text_col = gr.Dropdown(label="Text column", choices=columns, value=recipe.text_column or text_guess,
                                       elem_id="text-col", allow_custom_value=True)
                label_col = gr.Dropdown(label="Label column", choices=columns,
                                        value=recipe.label_column or label_guess, elem_id="label-col",
                                        allow_custom_value=True)
            rubric = gr.Textbox(label="Rubric (system prompt): what each label means", lines=6,
                                placeholder="Describe each label and end with 'Answer with the code only.' Empty: a "
                                            "plain list of the codes is used.",
                                value=recipe.rubric or (sample_rubric if is_sample else ""))
    with gr.Accordion("Split and balancing (the guide: Val A natural, Val B balanced, train 70/30 or 50/50)",
                      open=False):
        with gr.Row():
            form.add("data", names=SPLIT_FIELDS, config=config)
    check = gr.Button("Check data", variant="primary", elem_id="check-data")
    summary = gr.Markdown()
    with gr.Row():
        with gr.Column(scale=2):
            codes = gr.Dataframe(value=pd.DataFrame([[lb, c, "", ""] for lb, c in recipe.label_codes.items()],
                                                    columns=["label", "code", "tokens", "warnings"]),
                                 label="Label codes (edit the code column; short codes train best)",
                                 interactive=True, elem_id="codes")
        with gr.Column(scale=3):
            counts = gr.Plot(charts.class_counts(None), label="Class counts")
    preview = gr.Dataframe(label="Preview (first rows, as read)", interactive=False, max_height=300)

    def use_file(file):
        if file is None:
            return gr.skip()
        try:
            table = load_table(file, max_mb=ctx.max_upload_mb)
            kept = keep_upload(file, ctx.runs_dir)
        except StudioError as err:
            raise gr.Error(str(err)) from None
        cols = table.columns
        return (str(kept), gr.update(choices=cols, value=table.text_column),
                gr.update(choices=cols, value=table.label_column), f"Using **{file.split('/')[-1]}** (uploaded).",
                "", None)

    def use_sample():
        return (str(SAMPLE_DATA), gr.update(choices=["text", "label"], value="text"),
                gr.update(choices=["text", "label"], value="label"), f"Using **{SAMPLE_DATA.name}** (sample).",
                SAMPLE_RUBRIC.read_text(encoding="utf-8").strip(), None)

    reset = [path, text_col, label_col, source, rubric, codes]
    upload.upload(use_file, upload, reset, queue=False, api_visibility="private")
    sample.click(use_sample, None, reset, api_visibility="private")

    def run_check(data_path, text, label, rubric_text, code_table, model_name, *values):
        recipe = config_from(data_path, text, label, rubric_text, code_table, form, values, ctx).data
        tokenizer, note = ctx.tokenizer(model_name)
        try:
            prepared = prepare_data(recipe, tokenizer, ctx.max_seq_length(form, values))
        except StudioError as err:
            raise gr.Error(str(err)) from None
        ctx.data_rows = len(prepared.train)
        ctx.train_lengths = prepared.train_lengths or None
        ctx.lengths_key = (model_name, ctx.max_seq_length(form, values))
        ctx.class_counts = prepared.counts()["input"]
        table = prepared.table
        s = table.summary()
        lines = [f"**{s['rows']}** usable rows of {s['input_rows']} · text column **{s['text_column']}** · label "
                 f"column **{s['label_column']}** · {s['format']}, {s['encoding'] or ''} "
                 f"{'header row' if s['header'] else 'no header row'}",
                 "Classes: " + ", ".join(f"**{k}** {v}" for k, v in s["classes"].items()),
                 f"Training rows after balancing: **{len(prepared.train)}** · Val A {len(prepared.split.val_a)} · "
                 f"Val B {len(prepared.split.val_b)}"]
        if s["dropped"]:
            lines.append("Dropped: " + "; ".join(f"{d['count']} × {d['reason']} (rows "
                                                  f"{', '.join(map(str, d['rows'][:8]))})" for d in s["dropped"]))
        if note:
            lines.append(f"_{note}_")
        warnings = prepared.warnings
        text_out = "\n\n".join(lines) + ("\n\n**Warnings**\n" + md_list(warnings) if warnings else "")
        code_rows = [[r["label"], r["code"], r["tokens"] if r["tokens"] is not None else "",
                      "; ".join(r["warnings"])] for r in prepared.code_rows]
        preview_frame = table.source.frame.head(20)
        return (text_out, pd.DataFrame(code_rows, columns=["label", "code", "tokens", "warnings"]),
                charts.class_counts(prepared.counts()), preview_frame)

    return SimpleNamespace(path=path, text_col=text_col, label_col=label_col, rubric=rubric, codes=codes,
                           check=check, run_check=run_check, outputs=[summary, codes, counts, preview],
                           summary=summary)


def _columns(path: str, ctx: UIContext) -> tuple[list[str], str | None, str | None]:
    """The file's columns and the detected text and label columns (shown before the first check)."""
    try:
        table = load_table(path, max_mb=ctx.max_upload_mb)
    except StudioError:
        return [], None, None
    return table.columns, table.text_column, table.label_column


def config_from(data_path, text, label, rubric_text, code_table, form, values, ctx: UIContext) -> RunConfig:
    """The run config as the forms show it: the generated fields, plus the Data tab's own controls."""
    config = form.to_config(values)
    recipe = config.data
    recipe.path, recipe.text_column, recipe.label_column = data_path, text or "", label or ""
    recipe.rubric = (rubric_text or "").strip()
    if data_path == str(SAMPLE_DATA) and recipe.rubric == SAMPLE_RUBRIC.read_text(encoding="utf-8").strip():
        recipe.rubric = ""  # the sample's own rubric, resolved by the engine
    recipe.max_file_mb = ctx.max_upload_mb
    recipe.label_codes = codes_from_table(code_table)
    return config


def codes_from_table(table) -> dict:
    if table is None:
        return {}
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    if frame.empty or "label" not in frame or "code" not in frame:
        return {}
    return {str(r["label"]): str(r["code"]).strip() for _, r in frame.iterrows()
            if str(r["label"]).strip() and str(r["label"]) != "nan"}
