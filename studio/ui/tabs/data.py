"""Data tab: upload or sample, preview, columns, rubric, label codes, split and balance, class-count chart."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from studio.config import SAMPLE_DATA, SAMPLE_RUBRIC, RunConfig
from studio.data.prepare import keep_upload, prepare_data
from studio.data.table import load_table
from studio.errors import StudioError
from studio.ui import charts
from studio.ui.context import UIContext, error_box, for_the_page, md_list
from studio.ui.forms import Form

FILE_TYPES = [".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".xlsx", ".xls"]
SPLIT_FIELDS = ["val_fraction", "val_b_per_class", "split_seed", "balance", "minority_share",
                "undersample_majority", "prompt_format", "drop_duplicates", "header", "delimiter", "max_classes"]
CODE_COLUMNS = ["label", "code", "tokens", "warnings"]


def build(ctx: UIContext, form: Form) -> dict:
    recipe = form.base.data
    sample_rubric = SAMPLE_RUBRIC.read_text(encoding="utf-8").strip()
    is_sample = Path(recipe.path).resolve() == SAMPLE_DATA.resolve()
    path = form.register("data.path", gr.State(recipe.path))
    gr.Markdown("Upload a labelled file, or start from the sample forum posts (Rules Question vs Other, about "
                "90/10). Check the columns, the rubric and the label codes, then **Check data**.")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label="Data file (CSV, TSV, JSONL, JSON, Parquet, Excel)", file_types=FILE_TYPES,
                             elem_id="data-upload")
            sample = gr.Button("Use the sample data", size="sm")
            source = gr.Markdown(f"Using **{Path(recipe.path).name}**" + (" (sample)." if is_sample else "."))
            problem = gr.HTML(elem_id="data-error")  # stays until the user acts: a new file, the sample, a check
        with gr.Column(scale=3):
            with gr.Row():
                columns, text_guess, label_guess = _columns(recipe.path, ctx)
                text_col = form.register("data.text_column", gr.Dropdown(
                    label="Text column", choices=columns, value=recipe.text_column or text_guess,
                    elem_id="text-col", allow_custom_value=True), to_config=lambda v: v or "")
                label_col = form.register("data.label_column", gr.Dropdown(
                    label="Label column", choices=columns, value=recipe.label_column or label_guess,
                    elem_id="label-col", allow_custom_value=True), to_config=lambda v: v or "")
            rubric = form.register("data.rubric", gr.Textbox(
                label="Rubric (system prompt): what each label means", lines=6,
                placeholder="Describe each label and end with 'Answer with the code only.' Empty: a plain list of the "
                            "codes is used.",
                value=recipe.rubric or (sample_rubric if is_sample else "")), to_config=lambda v: (v or "").strip())
    with gr.Accordion("Split and balancing (the guide: Val A natural, Val B balanced, train 70/30 or 50/50)",
                      open=False):
        with gr.Row():
            form.add_fields("data", names=SPLIT_FIELDS)
    check_button = gr.Button("Check data", variant="primary", elem_id="check-data")
    summary = gr.Markdown(elem_id="data-summary")
    with gr.Row():
        with gr.Column(scale=2):
            codes = form.register("data.label_codes", gr.Dataframe(
                value=pd.DataFrame([[lb, c, "", ""] for lb, c in recipe.label_codes.items()], columns=CODE_COLUMNS),
                label="Label codes (edit the code column; short codes train best)", interactive=True,
                elem_id="codes"), to_config=codes_from_table, from_config=_code_frame)
        with gr.Column(scale=3):
            counts = gr.Plot(charts.class_counts(None), label="Class counts")
    preview = gr.Dataframe(headers=["the file's columns appear here after Check data"],
                           label="Preview (first rows, as read)", interactive=False, max_height=300)

    def finish(config: RunConfig, values: dict) -> None:
        """The Data tab's own rules: the sample's rubric is the engine's to resolve; uploads obey the app's limit."""
        data = config.data
        if data.path == str(SAMPLE_DATA) and data.rubric == sample_rubric:
            data.rubric = ""
        data.max_file_mb = ctx.max_upload_mb

    form.finisher(finish)

    def use_file(file):
        if file is None:
            return gr.skip()
        name = file.split("/")[-1]
        try:
            table = load_table(file, max_mb=ctx.max_upload_mb)
            kept = keep_upload(file, ctx.runs_dir)
        except StudioError as err:  # no file is in use now: Check data must not quietly use another one
            empty = gr.update(choices=[], value=None)
            reason = for_the_page(str(err))
            return {path: "", text_col: empty, label_col: empty, problem: error_box(reason), rubric: gr.skip(),
                    source: f"**{name}** cannot be used: {reason.split('. ')[0].removeprefix(name).strip()}.",
                    codes: None}
        cols = table.columns
        return {path: str(kept), text_col: gr.update(choices=cols, value=table.text_column),
                label_col: gr.update(choices=cols, value=table.label_column),
                source: f"Using **{name}** (uploaded).", problem: "", rubric: "", codes: None}

    def use_sample():
        return {path: str(SAMPLE_DATA), text_col: gr.update(choices=["text", "label"], value="text"),
                label_col: gr.update(choices=["text", "label"], value="label"),
                source: f"Using **{SAMPLE_DATA.name}** (sample).", problem: "", rubric: sample_rubric, codes: None}

    reset = [path, text_col, label_col, source, problem, rubric, codes]
    upload.upload(use_file, upload, reset, queue=False, api_visibility="private")
    sample.click(use_sample, None, reset, api_visibility="private")

    def run_check(data, progress=gr.Progress()):
        """The summary, or the problem in the page's error panel (the other outputs keep what they showed)."""
        try:
            return check(data, progress)
        except StudioError as err:
            return {problem: error_box(for_the_page(str(err))), summary: "", codes: gr.skip(), counts: gr.skip(),
                    preview: gr.skip()}

    def check(data, progress):
        config = form.config(data)
        if not config.data.path:
            raise StudioError("No data file is in use: upload a file, or click 'Use the sample data'.")
        model_name = config.model.name
        progress(0.1, desc=f"Loading the tokenizer of {model_name} (the first time, the embedded model is converted "
                           "once: about 40 seconds)")
        tokenizer, note = ctx.tokenizer(model_name)
        progress(0.4, desc="Reading, checking and splitting the rows")
        prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length)
        ctx.data_rows = len(prepared.train)
        ctx.train_lengths = prepared.train_lengths or None
        ctx.train_classes = prepared.train_classes()
        ctx.lengths_key = (model_name, config.model.max_seq_length)
        ctx.class_counts = prepared.counts()["input"]
        code_rows = [[r["label"], r["code"], r["tokens"] if r["tokens"] is not None else "", "; ".join(r["warnings"])]
                     for r in prepared.code_rows]
        progress(0.7, desc="A classic model on the rows: how hard is this data?")
        hint = difficulty_markdown(prepared, config.data.split_seed)
        return {problem: "", summary: summary_markdown(prepared, note) + hint,
                codes: pd.DataFrame(code_rows, columns=CODE_COLUMNS),
                counts: charts.class_counts(prepared.counts()), preview: prepared.table.source.frame.head(20)}

    return {"path": path, "check": check_button, "run_check": run_check, "summary": summary,
            "check_outputs": [summary, codes, counts, preview, problem]}


def summary_markdown(prepared, note: str | None) -> str:
    s = prepared.table.summary()
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
    return "\n\n".join(lines) + ("\n\n**Warnings**\n" + md_list(warnings) if warnings else "")


def difficulty_markdown(prepared, seed: int = 3407) -> str:
    """How hard is this data: a classic model's cross-validated macro-F1, in seconds, before any training."""
    from studio.evaluate import classic

    try:
        result = classic.difficulty(prepared.table.frame, prepared.labels, folds=3, seed=seed)
    except ValueError:  # too few rows per class to cross-validate
        return ""
    took = "under a second" if result["seconds"] < 1 else f"{result['seconds']:.0f} s"
    return (f"\n\n**How hard is this data?** A classic model (TF-IDF + logistic regression) reaches macro-F1 "
            f"**{result['macro_f1']:.3f}** on it (3-fold cross-validation, {took}). The fine-tuned model is worth its "
            "training when it beats that; the Evaluate tab shows both.")


def _columns(path: str, ctx: UIContext) -> tuple[list[str], str | None, str | None]:
    """The file's columns and the detected text and label columns (shown before the first check)."""
    try:
        table = load_table(path, max_mb=ctx.max_upload_mb)
    except StudioError:
        return [], None, None
    return table.columns, table.text_column, table.label_column


def _code_frame(codes: dict) -> pd.DataFrame:
    return pd.DataFrame([[lb, c, "", ""] for lb, c in (codes or {}).items()], columns=CODE_COLUMNS)


def codes_from_table(table) -> dict:
    if table is None:
        return {}
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    if frame.empty or "label" not in frame or "code" not in frame:
        return {}
    return {str(r["label"]): str(r["code"]).strip() for _, r in frame.iterrows()
            if str(r["label"]).strip() and str(r["label"]) != "nan"}
