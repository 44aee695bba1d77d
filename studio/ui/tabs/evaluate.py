"""Evaluate tab: the three candidates (the fine-tuned LLM, a classic TF-IDF model, their blend) side by side with
the one in use marked, beside the untrained model and always answering the majority label, in words; a selector to
use another; for the classifier in use, Val A and Val B side by side (confusion heatmaps, per-class tables) and the
threshold slider with the PR curve (binary tasks); the LLM's calibration (reliability diagram); disagreements and
batch predictions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.door.evaluation import DECISION_COLUMNS, NAMES, SET_TITLES, save_threshold, use_classifier
from studio.door.evaluation import evaluate as evaluate_run
from studio.door.predict import current_prediction, start_prediction
from studio.errors import StudioError
from studio.ui import charts
from studio.ui.html import notify
from studio.ui.page import Page, UIContext, Values
from studio.ui.run_picker import picker

PER_CLASS = ["label", "precision", "recall", "f1", "support"]
PAIRS = ["true", "predicted", "rows", "share"]
RENDERED = ["evaluate/summary", "evaluate/cm_a", "evaluate/cm_b", "evaluate/table_a", "evaluate/table_b",
            "evaluate/pr", "evaluate/reliability", "evaluate/disagreements", "evaluate/disagreements_file",
            "evaluate/pairs", "evaluate/classes"]
MANY_CLASSES = 20  # past this many classes the matrices show the worst classes (all on demand) and the pairs
WORST_SHOWN = 20
CLASS_VIEWS = [f"Worst {WORST_SHOWN} classes (lowest F1)", "All classes"]
CLASSIFIERS = {"llm": "Fine-tuned LLM", "classic": "Classic model (TF-IDF)", "blend": "Blend of the two"}
PREDICT_POLL_SECONDS = 1.0
TEST_FILE_ONCE = "All the test file's rows are in the matrix beside this one"
PREDICTION = ["evaluate/predict_status", "evaluate/predict_out", "evaluate/predict_preview", "evaluate/predict_timer",
              "evaluate/predict_box"]


def layout(page: Page) -> None:
    page.add("evaluate/state", gr.State(None))
    with gr.Row():
        page.add("evaluate/run", picker(page.ctx.runs_dir, "eval-run", scale=3))
        page.add("evaluate/mode", gr.Radio(["score", "generate"], value="score", label="Mode", scale=2,
                                           info="score: constrained label scoring; generate: greedy text, parsed"))
        page.add("evaluate/include_train", gr.Checkbox(label="Also check training rows for label noise", value=False,
                                                       scale=2))
        page.add("evaluate/go", gr.Button("Evaluate", variant="primary", elem_id="evaluate", scale=1))
    with gr.Accordion("Score a labelled test file instead (optional)", open=False):
        page.add("evaluate/data", gr.File(label="A test file with the run's labels: scored once, all its rows, its "
                                                "figures under its own name; the run's saved choice and rules are "
                                                "applied, nothing is fitted on it. (Batch predict below also gives a "
                                                "labelled file's figures.)", elem_id="eval-data"))
    page.add("evaluate/summary", gr.Markdown(elem_id="eval-summary"))
    page.add("evaluate/use", gr.Radio(
        [("Best on held-out rows", "auto")], value="auto", label="Classifier in use (predict, the Playground and the "
        "bundle use it)", visible=False, elem_id="eval-use",
        info="The studio picks the best candidate on held-out Val A rows; pick another to use it instead."))
    with gr.Row():
        page.add("evaluate/normalized", gr.Checkbox(label="Row-normalised confusion matrices", value=False))
        page.add("evaluate/classes", gr.Radio(CLASS_VIEWS, value=CLASS_VIEWS[0], label="Classes in the matrices",
                                              visible=False, elem_id="eval-classes"))
    page.add("evaluate/pairs", gr.Dataframe(headers=PAIRS, label="Most confused pairs, Val A (the classifier in use; "
                                                                 "share: of the true class's rows)",
                                            interactive=False, max_height=300, visible=False, elem_id="eval-pairs"))
    with gr.Row():
        for on in ("a", "b"):
            page.add(f"evaluate/cm_{on}", gr.Plot(charts.confusion(None, SET_TITLES[f"val_{on}"]),
                                                  elem_id=f"cm-val-{on}", show_label=False))
    with gr.Row():
        for on in ("a", "b"):  # sortable by any column (click its header), searchable by label
            page.add(f"evaluate/table_{on}", gr.Dataframe(headers=PER_CLASS, label=f"Val {on.upper()} per class",
                                                          interactive=False, max_height=400, show_search="search",
                                                          elem_id=f"per-class-{on}"))
    with gr.Row():
        with gr.Column():
            _threshold_layout(page)
            page.add("evaluate/reliability", gr.Plot(charts.reliability(None), show_label=False, elem_id="reliability"))
        page.add("evaluate/pr", gr.Plot(charts.pr_curve(None, None), show_label=False))
    page.add("evaluate/disagreements", gr.Dataframe(
        headers=DECISION_COLUMNS, label="Label sanity: the model confidently disagrees with the given label (the CSV "
                                        "has the whole texts; the Labels tab checks every row)",
        interactive=False, max_height=320, elem_id="disagreements", wrap=False,
        column_widths=["12%", "12%", "9%", "8%", "45%", "9%", "5%"]))
    page.add("evaluate/disagreements_file", gr.File(label="Disagreements CSV", interactive=False))
    with page.add("evaluate/predict_box", gr.Accordion("Batch predict a file", open=False, elem_id="predict-box")):
        with gr.Row():
            page.add("evaluate/predict_in", gr.File(label="File to classify (labels not needed; with the run's "
                                                          "label column it is also a test set: its figures show "
                                                          "here)", elem_id="predict-in"))
            page.add("evaluate/predict_out", gr.File(label="Predictions CSV", interactive=False,
                                                     elem_id="predict-out"))
        page.add("evaluate/predict_status", gr.Markdown(elem_id="predict-status"))
        page.add("evaluate/predict_preview", gr.Dataframe(headers=["predicted_label", "confidence", "your columns…"],
                                                          interactive=False, max_height=240))
    page.add("evaluate/predict_timer", gr.Timer(PREDICT_POLL_SECONDS, active=False))


def _threshold_layout(page: Page) -> None:
    page.add("evaluate/threshold", gr.Slider(
        0.01, 0.99, value=0.5, step=0.01, label="Minority-class threshold", visible=False, elem_id="threshold",
        info="Predict the minority label when its (calibrated) probability reaches this value."))
    page.add("evaluate/threshold_note", gr.Markdown("_The threshold applies to two-class tasks (evaluate one to use "
                                                    "it)._"))
    page.add("evaluate/save", gr.Button("Save threshold with the run (used by predict and export)", size="sm",
                                        visible=False))


def wire(page: Page) -> None:
    page.on(page["evaluate/go"].click, evaluate,
            ["evaluate/run", "evaluate/mode", "evaluate/include_train", "evaluate/normalized", "evaluate/data"],
            ["evaluate/state", *RENDERED, "evaluate/threshold", "evaluate/threshold_note", "evaluate/save",
             "evaluate/use"], progress=True, api_name="evaluate")
    page.on(page["evaluate/use"].input, use, ["evaluate/state", "evaluate/use", "evaluate/threshold",
                                              "evaluate/normalized", "evaluate/classes"], RENDERED,
            api_name="use_classifier")
    redraw = ["evaluate/state", "evaluate/threshold", "evaluate/normalized", "evaluate/classes"]
    page.on(page["evaluate/threshold"].release, moved, redraw, RENDERED, api_visibility="private")
    page.on(page["evaluate/normalized"].change, rerender, redraw, RENDERED, api_visibility="private")
    page.on(page["evaluate/classes"].input, rerender, redraw, RENDERED, api_visibility="private")
    page.on(page["evaluate/save"].click, save, ["evaluate/state", "evaluate/threshold", "evaluate/run"], [],
            api_name="save_threshold")
    page.on(page["evaluate/predict_in"].upload, predict, ["evaluate/predict_in", "evaluate/run"], PREDICTION,
            api_name="predict_file")
    page.on(page["evaluate/predict_timer"].tick, prediction, [], PREDICTION, queue=False, show_progress="hidden",
            api_visibility="private")


def evaluate(ctx: UIContext, values: Values) -> dict:
    if not values["evaluate/run"]:
        raise StudioError("Pick a run to evaluate (train one first).")
    mode = values["evaluate/mode"]
    evaluated = evaluate_run(values["evaluate/run"], ctx.runs_dir, mode=mode, names_only=True,
                             include_train=values["evaluate/include_train"], log=notify,
                             progress=values.progress, data=values["evaluate/data"] or None)
    binary = evaluated.binary
    classes = len(evaluated.evaluation.labels)
    note = ("" if binary else f"_The threshold applies to two-class tasks; this run has {classes} classes, so each "
            "row takes its most probable class._" if mode == "score" else
            "_Generate mode has no probabilities: no threshold._")
    shown = evaluated.threshold_in_view or evaluated.rule_threshold or 0.5  # (a slider has to show a value)
    return {"evaluate/state": evaluated, **render(evaluated, values["evaluate/normalized"], CLASS_VIEWS[0]),
            "evaluate/threshold": gr.update(value=shown, visible=binary),
            "evaluate/threshold_note": gr.update(value=note, visible=not binary),
            "evaluate/save": gr.update(visible=binary), "evaluate/use": use_choices(evaluated)}


def use_choices(evaluated) -> dict:
    """The selector: the best on held-out rows (naming it), or each candidate."""
    if len(evaluated.candidates) < 2:  # none (generate mode), or a first classifier's one: nothing to pick
        return gr.update(visible=False)
    auto = f"Best on held-out rows ({NAMES[evaluated.chosen]})"
    choices = [(auto, "auto")] + [(words, n) for n, words in CLASSIFIERS.items() if n in evaluated.candidates]
    return gr.update(choices=choices, value="auto" if evaluated.in_use == evaluated.chosen else evaluated.in_use,
                     visible=True)


def use(ctx: UIContext, values: Values) -> dict:
    evaluated = values["evaluate/state"]
    if evaluated is None:
        raise StudioError("Evaluate a run first.")
    evaluated = use_classifier(evaluated, values["evaluate/use"])
    notify(f"{CLASSIFIERS[evaluated.in_use]} is the classifier in use for {evaluated.run.name}.")
    return render(evaluated, values["evaluate/normalized"], values["evaluate/classes"])


def moved(ctx: UIContext, values: Values) -> dict:
    """The slider, let go: its threshold decides the classifier in use's minority from now on (set by hand)."""
    evaluated = values["evaluate/state"]
    if evaluated is None:
        return {}
    if evaluated.binary:
        evaluated.threshold_in_view = values["evaluate/threshold"]
    return render(evaluated, values["evaluate/normalized"], values["evaluate/classes"])


def rerender(ctx: UIContext, values: Values) -> dict:
    evaluated = values["evaluate/state"]
    return {} if evaluated is None else render(evaluated, values["evaluate/normalized"], values["evaluate/classes"])


def render(evaluated, normalized, classes_view: str | None = None) -> dict:
    """The summary, and the classifier in use's matrices, tables and precision-recall curve, at the threshold in
    view (None until one is saved with the run or the slider is moved: each rule decides as fitted). Many classes:
    the matrices show the worst classes of each set unless all are asked for, the most confused pairs above them,
    the per-class tables worst first."""
    threshold = evaluated.threshold_in_view
    report = evaluated.at(threshold)
    view, csv_path = evaluated.disagreements(threshold)
    whose = f" · {CLASSIFIERS[evaluated.in_use]}" if evaluated.in_use else ""
    a, b = evaluated.figures(report, "val_a"), evaluated.figures(report, "val_b")
    many = len(evaluated.evaluation.labels) > MANY_CLASSES
    worst = many and classes_view != CLASS_VIEWS[1]
    return {"evaluate/summary": evaluated.markdown(report),
            "evaluate/cm_a": charts.confusion(a, evaluated.set_title("val_a") + whose, normalized,
                                              evaluated.worst_classes(a, WORST_SHOWN) if worst else None),
            "evaluate/cm_b": charts.confusion(b, evaluated.set_title("val_b") + whose, normalized,
                                              evaluated.worst_classes(b, WORST_SHOWN) if worst and b["n"] else None,
                                              empty=TEST_FILE_ONCE if evaluated.test_file else
                                              "Evaluate a run to see its confusion matrix"),
            "evaluate/table_a": per_class(a, many), "evaluate/table_b": per_class(b, many),
            "evaluate/pr": charts.pr_curve(evaluated.pr_curve(threshold), threshold),
            "evaluate/reliability": charts.reliability(report.get("calibration")),
            "evaluate/disagreements": view, "evaluate/disagreements_file": str(csv_path),
            "evaluate/pairs": gr.update(value=pd.DataFrame(evaluated.confused_pairs(a, top=50), columns=PAIRS),
                                        visible=many),
            "evaluate/classes": gr.update(visible=many)}


def per_class(metrics: dict, worst_first: bool = False) -> pd.DataFrame:
    """Per-class rows (precision, recall, F1, support) of one set, rounded for a table (the lowest F1 first)."""
    table = pd.DataFrame([{"label": lb, **vals} for lb, vals in metrics["per_class"].items()],
                         columns=PER_CLASS).round(3)
    return table.sort_values(["f1", "support"], ascending=[True, False], kind="stable") if worst_first else table


def save(ctx: UIContext, values: Values) -> None:
    evaluated, t = values["evaluate/state"], values["evaluate/threshold"]
    if evaluated is None or len(evaluated.evaluation.labels) != 2:
        raise StudioError("Evaluate a two-class run first.")
    notify(save_threshold(values["evaluate/run"], float(t), ctx.runs_dir, names_only=True))
    evaluated.evaluation.threshold = evaluated.threshold_in_view = float(t)


def predict(ctx: UIContext, values: Values) -> dict:
    """Start classifying the uploaded file in the background; the timer follows it (and a reloaded page finds it)."""
    file, run = values["evaluate/predict_in"], values["evaluate/run"]
    if file is None:
        return {}
    if not run:
        raise StudioError("Pick a run first.")
    out = Path(tempfile.mkdtemp(prefix="studio-predict-")) / f"{Path(file).stem}-predictions.csv"
    start_prediction(run, file, out, ctx.runs_dir, names_only=True, log=lambda m: None)
    return {**prediction(ctx, values), "evaluate/predict_out": None, "evaluate/predict_preview": None}


def prediction(ctx: UIContext, values: Values) -> dict:
    """The batch prediction of this app, running or done: its words and rows, then the file and a preview; the
    timer runs only while it does."""
    job = current_prediction()
    if job is None:
        return {"evaluate/predict_timer": gr.Timer(active=False)}
    shown = {"evaluate/predict_status": job.markdown(), "evaluate/predict_box": gr.Accordion(open=True),
             "evaluate/predict_timer": gr.Timer(PREDICT_POLL_SECONDS, active=job.running)}
    if job.state == "finished":
        shown.update({"evaluate/predict_out": str(job.result.output), "evaluate/predict_preview": job.result.preview})
    return shown
