"""Labels tab: likely wrong labels over the whole file (each row judged by a model that never saw it), most likely
first; keep / relabel / drop each, saved beside the upload as it is made; download the cleaned file (same format)
with a CSV of the edits; retrain on it."""

from __future__ import annotations

import threading

import gradio as gr
import pandas as pd

from studio.door import labels as review
from studio.door.result import escape_markdown
from studio.errors import StudioError
from studio.ui.page import Page, UIContext, Values

COLUMNS = ["row", "label", "suggested", "score", "decision", "text"]
TEXT_PREVIEW = 140
_stop = threading.Event()


def layout(page: Page) -> None:
    gr.Markdown("Find likely wrong labels in the **whole file**: every row is judged by a model that never saw it "
                "(cross-fitting), and cleanlab ranks the rows whose label the evidence contradicts. A classic model "
                "takes seconds; LLM folds fine-tune the model of the Model & LoRA tab K times (minutes each) and "
                "find more. Review the suspects, then download the cleaned file or retrain on it.")
    with gr.Row():
        page.add("labels/folds", gr.Number(
            value=0, precision=0, minimum=0, maximum=5, label="LLM folds (0: the classic model only)", scale=2,
            info="2 is enough: each fold's model learns from the other half. Finished folds are kept.",
            elem_id="llm-folds"))
        page.add("labels/find", gr.Button("Find label issues", variant="primary", elem_id="find-issues", scale=1))
        page.add("labels/stop", gr.Button("Stop the LLM folds", variant="secondary", size="sm", scale=1))
    page.add("labels/status", gr.Markdown(elem_id="issues-status"))
    page.add("labels/suspects", gr.Dataframe(
        headers=COLUMNS, label="Suspects, most likely first (click a row to review it)", interactive=False,
        max_height=360, elem_id="suspects", wrap=False, column_widths=["7%", "13%", "13%", "7%", "12%", "48%"]))
    with gr.Row():
        page.add("labels/row", gr.Number(label="Row (as in the file)", precision=0, elem_id="review-row", scale=1))
        page.add("labels/action", gr.Radio(["keep", "relabel", "drop"], value="relabel", label="Decision",
                                           elem_id="review-action", scale=2))
        page.add("labels/new_label", gr.Dropdown(label="New label", choices=[], elem_id="review-label", scale=2,
                                                 info="For relabel: the suggested label is preselected."))
        page.add("labels/decide", gr.Button("Save decision", elem_id="save-decision", scale=1))
    page.add("labels/review_text", gr.Markdown(elem_id="review-text"))
    page.add("labels/decided", gr.Markdown(elem_id="decisions-summary"))
    with gr.Row():
        page.add("labels/download", gr.Button("Download cleaned file", elem_id="download-cleaned"))
        page.add("labels/retrain", gr.Button("Retrain on the cleaned file", variant="primary",
                                             elem_id="retrain-cleaned"))
    page.add("labels/files", gr.File(label="Cleaned file and the edits (CSV)", file_count="multiple",
                                     interactive=False, elem_id="cleaned-files", visible=False))  # shown with files
    page.add("labels/found", gr.State(None))  # the review's state: the file, its columns, the suspects


def wire(page: Page) -> None:
    """Events (the LLM folds use the Model & LoRA tab's settings: wired once every form component exists)."""
    page.on(page["labels/find"].click, find_issues, ["labels/folds"],
            ["labels/found", "labels/status", "labels/suspects", "labels/decided", "labels/new_label"], config=True,
            progress=True, api_name="find_label_issues")
    page["labels/stop"].click(lambda: _stop.set(), None, None, api_name="stop_label_issues")
    page.on(page["labels/suspects"].select, pick, ["labels/found"],
            ["labels/row", "labels/new_label", "labels/review_text"], selected=True, api_visibility="private")
    page.on(page["labels/decide"].click, save,
            ["labels/found", "labels/row", "labels/action", "labels/new_label"],
            ["labels/suspects", "labels/decided"], api_name="save_label_decision")
    page.on(page["labels/download"].click, cleaned, ["labels/found"], ["labels/files"], api_name="download_cleaned")
    page.on(page["labels/retrain"].click, retrain, ["labels/found"], ["labels/status"], config=True,
            api_name="retrain_on_cleaned")


def find_issues(ctx: UIContext, values: Values) -> dict:
    config = values.config
    config.data.path = str(review.reviewable(config.data.path, ctx.runs_dir))
    _stop.clear()
    found = review.find_label_issues(config, int(values["labels/folds"] or 0), stop=_stop, log=lambda m: None,
                                     progress=values.progress)
    if found is None:
        raise StudioError("Stopped: the finished LLM folds are kept; press Find label issues to continue.")
    state = found.review_state()
    return {"labels/found": state, "labels/status": found.markdown(), "labels/suspects": table(state),
            "labels/decided": review.decisions_line(state), "labels/new_label": gr.update(choices=found.labels)}


def pick(ctx: UIContext, values: Values, evt=None) -> dict:
    state = values["labels/found"]
    if not state or evt is None or evt.index is None:
        return {}
    issue = state["issues"][evt.index[0]]
    return {"labels/row": issue["row"], "labels/new_label": gr.update(value=issue["suggested"]),
            "labels/review_text": review_markdown(issue)}


def save(ctx: UIContext, values: Values) -> dict:
    state = values["labels/found"]
    review.decide(state, values["labels/row"], values["labels/action"], values["labels/new_label"])
    return {"labels/suspects": table(state), "labels/decided": review.decisions_line(state)}


def cleaned(ctx: UIContext, values: Values) -> dict:
    target, edits, _ = review.cleaned_file(values["labels/found"], ctx.runs_dir, ctx.max_upload_mb)
    return {"labels/files": gr.update(value=[str(target), str(edits)], visible=True)}


def retrain(ctx: UIContext, values: Values) -> dict:
    started = review.retrain_on_cleaned(values.config, values["labels/found"], ctx.runs_dir, ctx.max_upload_mb)
    return {"labels/status": started.markdown()}


def table(state) -> pd.DataFrame:
    made = review.decisions(state)
    rows = []
    for issue in state["issues"]:
        d = made.get(int(issue["row"]))
        text = str(issue["text"])
        rows.append({"row": int(issue["row"]), "label": issue["label"], "suggested": issue["suggested"],
                     "score": round(float(issue["score"]), 3),
                     "decision": "" if d is None else (f"→ {d.new_label}" if d.action == "relabel" else d.action),
                     "text": text if len(text) <= TEXT_PREVIEW else text[:TEXT_PREVIEW - 1] + "…"})
    return pd.DataFrame(rows, columns=COLUMNS)


def review_markdown(issue: dict) -> str:
    md = escape_markdown
    return (f"**Row {issue['row']}** · given **{md(issue['label'])}**, the evidence suggests "
            f"**{md(issue['suggested'])}** (score {float(issue['score']):.2f}; {md(issue['source'])})\n\n"
            f"> {md(issue['text'])}")
