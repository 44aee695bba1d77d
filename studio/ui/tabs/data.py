"""Data tab: upload or sample, preview, columns, rubric, label codes, split and balance, class-count chart."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from studio.config import SAMPLE_DATA, SAMPLE_RUBRIC, RunConfig
from studio.door.data import check_data, file_columns, use_upload
from studio.door.result import escape_markdown
from studio.errors import StudioError
from studio.ui import charts
from studio.ui.html import error_box, notify
from studio.ui.page import Page, UIContext, Values, for_the_page

FILE_TYPES = [".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".xlsx", ".xls"]
SPLIT_FIELDS = ["val_fraction", "val_b_per_class", "split_seed", "balance", "minority_share",
                "undersample_majority", "prompt_format", "drop_duplicates", "header", "delimiter", "max_classes",
                "out_of_scope", "unsure"]
CODE_COLUMNS = ["label", "code", "tokens", "warnings"]
SAMPLE_RUBRIC_TEXT = SAMPLE_RUBRIC.read_text(encoding="utf-8").strip()
FILE_OUTPUTS = ["data.path", "data.text_column", "data.label_column", "data/source", "data/problem", "data.rubric",
                "data.label_codes", "data/rejected", "data/summary", "data/counts", "data/preview"]
CHECK_OUTPUTS = ["data/summary", "data.label_codes", "data/counts", "data/preview", "data/problem"]


def layout(page: Page) -> None:
    recipe = page.form.base.data
    is_sample = Path(recipe.path).resolve() == SAMPLE_DATA.resolve()
    page.form.register("data.path", gr.State(recipe.path))
    gr.Markdown("Upload a labelled file, or start from the sample forum posts (Rules Question vs Other, about "
                "90/10). Check the columns, the rubric and the label codes, then **Check data**.")
    with gr.Row():
        with gr.Column(scale=2):
            page.add("data/upload", gr.File(label="Data file (CSV, TSV, JSONL, JSON, Parquet, Excel)",
                                            file_types=FILE_TYPES, elem_id="data-upload"))
            page.add("data/sample", gr.Button("Use the sample data", size="sm"))
            page.add("data/source", gr.Markdown(f"Using **{escape_markdown(Path(recipe.path).name)}**" +
                                                (" (sample)." if is_sample else ".")))
            # stays until the user acts: a new file, the sample, a check
            page.add("data/problem", gr.HTML(elem_id="data-error"))
            page.add("data/rejected", gr.State(""))  # why the last upload was refused (until a file is in use)
        with gr.Column(scale=3):
            _columns_and_rubric(page, is_sample)
    with gr.Accordion("Split and balancing (the guide: Val A natural, Val B balanced, train 70/30 or 50/50)",
                      open=False):
        with gr.Row():
            page.form.add_fields("data", names=SPLIT_FIELDS)
    page.add("data/check", gr.Button("Check data", variant="primary", elem_id="check-data"))
    page.add("data/summary", gr.Markdown(elem_id="data-summary"))
    with gr.Row():
        with gr.Column(scale=2):
            page.form.register("data.label_codes", gr.Dataframe(
                value=code_frame(recipe.label_codes), interactive=True, elem_id="codes", max_height=420,
                show_search="search",
                label="Label codes (edit the code column; short codes train best)"),
                to_config=codes_from_table, from_config=code_frame)
        with gr.Column(scale=3):
            page.add("data/counts", gr.Plot(charts.class_counts(None), label="Class counts"))
    page.add("data/preview", gr.Dataframe(headers=["the file's columns appear here after Check data"],
                                          label="Preview (first rows, as read)", interactive=False, max_height=300))
    page.form.finisher(lambda config, values: finish(page.ctx, config))


def _columns_and_rubric(page: Page, is_sample: bool) -> None:
    recipe = page.form.base.data
    with gr.Row():
        columns, text_guess, label_guess = file_columns(recipe.path, page.ctx.max_upload_mb)
        page.form.register("data.text_column", gr.Dropdown(
            label="Text column", choices=columns, value=recipe.text_column or text_guess, elem_id="text-col",
            allow_custom_value=True), to_config=lambda v: v or "")
        page.form.register("data.label_column", gr.Dropdown(
            label="Label column", choices=columns, value=recipe.label_column or label_guess, elem_id="label-col",
            allow_custom_value=True), to_config=lambda v: v or "")
    page.form.register("data.rubric", gr.Textbox(
        label="Rubric (system prompt): what each label means", lines=6,
        placeholder="Describe each label and end with 'Answer with the code only.' Empty: a plain list of the "
                    "codes is used (past 16 classes a short instruction: training teaches the codes).",
        value=recipe.rubric or (SAMPLE_RUBRIC_TEXT if is_sample else "")), to_config=lambda v: (v or "").strip())


def wire(page: Page) -> None:
    page.on(page["data/upload"].upload, use_file, ["data/upload"], FILE_OUTPUTS, queue=False,
            api_visibility="private")
    page.on(page["data/sample"].click, use_sample, [], FILE_OUTPUTS, api_visibility="private")


def finish(ctx: UIContext, config: RunConfig) -> None:
    """The Data tab's own rules: the sample's rubric is the engine's to resolve; uploads obey the app's limit."""
    data = config.data
    if data.path == str(SAMPLE_DATA) and data.rubric == SAMPLE_RUBRIC_TEXT:
        data.rubric = ""
    data.max_file_mb = ctx.max_upload_mb


def use_file(ctx: UIContext, values: Values) -> dict:
    file = values["data/upload"]
    if file is None:
        return {}
    name = Path(file).name
    try:
        upload = use_upload(file, ctx.runs_dir, ctx.max_upload_mb)
    except StudioError as err:  # no file is in use now: Check data must not quietly use another one
        reason = for_the_page(str(err))
        return {"data.path": "", "data.text_column": gr.update(choices=[], value=None),  # one update each: Gradio
                "data.label_column": gr.update(choices=[], value=None),  # pops the value out of the dict it gets
                "data/problem": error_box(reason), "data.label_codes": code_frame({}), "data/rejected": reason,
                "data/source": f"**{escape_markdown(name)}** cannot be used: "
                               f"{escape_markdown(reason.split('. ')[0].removeprefix(name).strip())}.",
                **_previous_check_cleared()}
    # A file that reads but whose rows are refused (a label column to change, a limit to raise) stays in use:
    # the pickers and Check data work on it.
    problem = for_the_page(upload.problem) if upload.problem else ""
    return {"data.path": upload.path, "data.text_column": gr.update(choices=upload.columns, value=upload.text_column),
            "data.label_column": gr.update(choices=upload.columns, value=upload.label_column),
            "data/source": f"Using **{escape_markdown(name)}** (uploaded).", "data.rubric": "",
            "data/problem": error_box(problem + " Change the columns or the limits, then press Check data.")
            if problem else "", "data.label_codes": code_frame({}), "data/rejected": "", **_previous_check_cleared()}


def _previous_check_cleared() -> dict:
    """The last check's summary, chart and preview belong to the file it checked: gone with it."""
    return {"data/summary": "", "data/counts": charts.class_counts(None),
            "data/preview": pd.DataFrame(columns=["the file's columns appear here after Check data"])}


def use_sample(ctx: UIContext, values: Values) -> dict:
    columns = ["text", "label"]
    return {"data.path": str(SAMPLE_DATA), "data.text_column": gr.update(choices=columns, value="text"),
            "data.label_column": gr.update(choices=columns, value="label"),
            "data/source": f"Using **{SAMPLE_DATA.name}** (sample).", "data/problem": "",
            "data.rubric": SAMPLE_RUBRIC_TEXT, "data.label_codes": code_frame({}), "data/rejected": "",
            **_previous_check_cleared()}


def run_check(ctx: UIContext, values: Values) -> dict:
    """The summary, or the problem in the page's error panel (the other outputs keep what they showed); with no file
    in use because the last upload was refused, that refusal again (not a generic "no file")."""
    if values.get("data/rejected") and not values.get("data.path"):
        return {"data/problem": error_box(values["data/rejected"]), "data/summary": ""}
    try:
        config = values.config
        checked = check_data(config, config.model.name, difficulty=True, progress=values.progress,
                             log=notify)
    except StudioError as err:
        return {"data/problem": error_box(for_the_page(str(err))), **_previous_check_cleared()}
    ctx.data = checked.facts
    return {"data/problem": "", "data/summary": checked.markdown(),
            "data.label_codes": pd.DataFrame(checked.code_rows(), columns=CODE_COLUMNS),
            "data/counts": charts.class_counts(checked.counts()), "data/preview": checked.preview(20)}


def code_frame(codes: dict) -> pd.DataFrame:
    return pd.DataFrame([[lb, c, "", ""] for lb, c in (codes or {}).items()], columns=CODE_COLUMNS)


def codes_from_table(table) -> dict:
    if table is None:
        return {}
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    if frame.empty or "label" not in frame or "code" not in frame:
        return {}
    return {str(r["label"]): str(r["code"]).strip() for _, r in frame.iterrows()
            if str(r["label"]).strip() and str(r["label"]) != "nan"}
