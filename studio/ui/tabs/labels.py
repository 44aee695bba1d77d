"""Labels tab: likely wrong labels over the whole file (each row judged by a model that never saw it), most likely
first; keep / relabel / drop each, saved beside the upload as it is made; download the cleaned file (same format)
with a CSV of the edits; retrain on it."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.data.edits import Decision, cleaned_copy, edits_table, load_decisions, save_decision
from studio.data.prepare import DELIMITER_ALIASES, file_sha256, keep_upload, prepare_data
from studio.errors import StudioError
from studio.ui.context import UIContext, ui_errors
from studio.ui.forms import Form

COLUMNS = ["row", "label", "suggested", "score", "decision", "text"]
TEXT_PREVIEW = 140
_stop = threading.Event()


def build(ctx: UIContext, form: Form) -> dict:
    gr.Markdown("Find likely wrong labels in the **whole file**: every row is judged by a model that never saw it "
                "(cross-fitting), and cleanlab ranks the rows whose label the evidence contradicts. A classic model "
                "takes seconds; LLM folds fine-tune the model of the Model & LoRA tab K times (minutes each) and "
                "find more. Review the suspects, then download the cleaned file or retrain on it.")
    with gr.Row():
        folds = gr.Number(value=0, precision=0, minimum=0, maximum=5, label="LLM folds (0: the classic model only)",
                          info="2 is enough: each fold's model learns from the other half. Finished folds are kept.",
                          elem_id="llm-folds", scale=2)
        find = gr.Button("Find label issues", variant="primary", elem_id="find-issues", scale=1)
        stop = gr.Button("Stop the LLM folds", variant="secondary", size="sm", scale=1)
    status = gr.Markdown(elem_id="issues-status")
    suspects = gr.Dataframe(headers=COLUMNS, label="Suspects, most likely first (click a row to review it)",
                            interactive=False, max_height=360, elem_id="suspects", wrap=False,
                            column_widths=["7%", "13%", "13%", "7%", "12%", "48%"])
    with gr.Row():
        row = gr.Number(label="Row (as in the file)", precision=0, elem_id="review-row", scale=1)
        action = gr.Radio(["keep", "relabel", "drop"], value="relabel", label="Decision", elem_id="review-action",
                          scale=2)
        new_label = gr.Dropdown(label="New label", choices=[], elem_id="review-label", scale=2,
                                info="For relabel: the suggested label is preselected.")
        decide = gr.Button("Save decision", elem_id="save-decision", scale=1)
    review_text = gr.Markdown(elem_id="review-text")
    decided = gr.Markdown(elem_id="decisions-summary")
    with gr.Row():
        download = gr.Button("Download cleaned file", elem_id="download-cleaned")
        retrain = gr.Button("Retrain on the cleaned file", variant="primary", elem_id="retrain-cleaned")
    files = gr.File(label="Cleaned file and the edits (CSV)", file_count="multiple", interactive=False,
                    elem_id="cleaned-files", visible=False)  # shown with the files, not as an empty box
    found = gr.State(None)  # {"data": path, "label_column", "labels", "issues": records}

    @ui_errors
    def find_issues(data, progress=gr.Progress()):
        from studio.evaluate import label_issues
        from studio.models.loading import load_tokenizer

        config = form.config(data)
        config.data.path = str(reviewable(config.data.path, ctx))
        k = int(data[folds] or 0)
        tokenizer = load_tokenizer(config.model.name, log=lambda m: gr.Info(m)) if k else None
        prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length)
        llm = None
        if k:
            _stop.clear()
            llm = label_issues.llm_out_of_fold(
                prepared, config, k, label_issues.workdir_for(config.data.path, config), log=lambda m: None,
                progress=lambda message, fraction: progress(fraction, desc=message), stop=_stop)
            if llm is None:
                raise StudioError("Stopped: the finished LLM folds are kept; press Find label issues to continue.")
        progress(0.95, desc="Classic model: 5 folds")
        result = label_issues.find(prepared, llm_probs=llm)
        state = {"data": config.data.path, "label_column": prepared.table.label_column, "labels": prepared.labels,
                 "header": config.data.header, "delimiter": config.data.delimiter,
                 "issues": result.table.to_dict("records")}
        s = result.to_dict(limit=0)["summary"]
        text = (f"**{s['issues_found']}** likely label issues in {s['rows_checked']} rows ({' + '.join(s['sources'])},"
                f" {s['minutes'] * 60:.0f} s). Decisions are saved beside the file as you make them.")
        return {found: state, status: text, suspects: table(state), decided: decisions_markdown(state),
                new_label: gr.update(choices=prepared.labels)}

    def stop_folds():
        _stop.set()

    def pick(state, evt: gr.SelectData):
        if not state or evt is None or evt.index is None:
            return gr.skip(), gr.skip(), gr.skip()
        issue = state["issues"][evt.index[0]]
        return issue["row"], gr.update(value=issue["suggested"]), review_markdown(issue)


    @ui_errors
    def save(state, row_number, choice, label):

        if not state:
            raise StudioError("Find the label issues first.")
        issue = next((i for i in state["issues"] if int(i["row"]) == int(row_number or -1)), None)
        if issue is None:
            raise StudioError(f"Row {row_number} is not among the suspects: click one in the table.")
        save_decision(state["data"], Decision(int(issue["row"]), choice, issue["label"],
                                              label if choice == "relabel" else None, issue["text"]),
                      state["labels"])
        return table(state), decisions_markdown(state)


    @ui_errors
    def cleaned(state):

        if not state:
            raise StudioError("Find the label issues and make some decisions first.")
        target, edits, _ = cleaned_copy(state["data"], state["label_column"], Path(ctx.runs_dir) / ".uploads",
                                        header=_header(state), delimiter=_delimiter(state),
                                        max_mb=ctx.max_upload_mb)
        return gr.update(value=[str(target), str(edits)], visible=True)


    @ui_errors
    def retrain_on_cleaned(data):
        from studio.ui.tabs.train import start_job

        state = data[found]
        if not state:
            raise StudioError("Find the label issues and make some decisions first.")
        target, _, decisions = cleaned_copy(state["data"], state["label_column"], Path(ctx.runs_dir) / ".uploads",
                                            header=_header(state), delimiter=_delimiter(state),
                                            max_mb=ctx.max_upload_mb)
        config = form.config(data)
        config.data.path = str(target)
        config.data.edits = {"source": state["data"], "source_sha256": file_sha256(state["data"]),
                             "edits": edits_table(decisions).to_dict("records")}
        return start_job(ctx, config)

    def wire():
        """Events, once every form component exists (the LLM folds use the Model & LoRA tab's settings)."""
        fn, inputs = form.bind(find_issues, folds)
        find.click(fn, inputs, [found, status, suspects, decided, new_label], api_name="find_label_issues")
        stop.click(stop_folds, None, None, api_name="stop_label_issues")
        suspects.select(pick, found, [row, new_label, review_text], api_visibility="private")
        decide.click(save, [found, row, action, new_label], [suspects, decided], api_name="save_label_decision")
        download.click(cleaned, found, files, api_name="download_cleaned")
        fn, inputs = form.bind(retrain_on_cleaned, found)
        retrain.click(fn, inputs, status, api_name="retrain_on_cleaned")

    return {"found": found, "wire": wire}


def reviewable(path: str, ctx: UIContext) -> Path:
    """The file whose labels are reviewed: an upload already kept beside the runs, else a kept copy (of the sample,
    say): decisions are written beside it, never into the studio's own assets."""

    path = Path(path)
    if path.resolve().parent == (Path(ctx.runs_dir) / ".uploads").resolve():
        return path
    return keep_upload(path, ctx.runs_dir)


def table(state) -> pd.DataFrame:

    decisions = load_decisions(state["data"])
    rows = []
    for issue in state["issues"]:
        d = decisions.get(int(issue["row"]))
        text = str(issue["text"])
        rows.append({"row": int(issue["row"]), "label": issue["label"], "suggested": issue["suggested"],
                     "score": round(float(issue["score"]), 3),
                     "decision": "" if d is None else (f"→ {d.new_label}" if d.action == "relabel" else d.action),
                     "text": text if len(text) <= TEXT_PREVIEW else text[:TEXT_PREVIEW - 1] + "…"})
    return pd.DataFrame(rows, columns=COLUMNS)


def decisions_markdown(state) -> str:

    decisions = load_decisions(state["data"])
    if not decisions:
        return "_No decisions yet: click a suspect, choose keep / relabel / drop, and save._"
    counts = {a: sum(1 for d in decisions.values() if d.action == a) for a in ("relabel", "drop", "keep")}
    n = len(decisions)
    return (f"**{n}** decision{'s' if n != 1 else ''} saved: {counts['relabel']} relabelled, {counts['drop']} "
            f"dropped, {counts['keep']} kept as they are.")


def review_markdown(issue: dict) -> str:
    return (f"**Row {issue['row']}** · given **{issue['label']}**, the evidence suggests **{issue['suggested']}** "
            f"(score {float(issue['score']):.2f}; {issue['source']})\n\n> {issue['text']}")


def _header(state):
    return {"auto": None, "yes": True, "no": False}.get(state.get("header") or "auto")


def _delimiter(state):

    value = state.get("delimiter") or ""
    return DELIMITER_ALIASES.get(value.lower(), value) or None

