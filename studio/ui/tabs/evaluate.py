"""Evaluate tab: Val A and Val B side by side (confusion heatmaps, per-class tables), the fine-tuned model beside the
untrained model, a classic TF-IDF model and always answering the majority label, in words; calibration (reliability
diagram); the threshold slider with the PR curve (binary tasks); disagreements and batch predictions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.evaluate.report import judged, metrics_table, summary_lines
from studio.train.runs import RunDir
from studio.ui import charts
from studio.ui.context import UIContext, as_markdown, ui_errors

DECISION_COLUMNS = ["label", "predicted", "confidence", "p_label", "text", "set", "row"]
PER_CLASS = ["label", "precision", "recall", "f1", "support"]
TEXT_PREVIEW = 160


def build(ctx: UIContext) -> dict:
    evaluation = gr.State(None)
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=ctx.run_choices(), value=ctx.newest_run(), elem_id="eval-run",
                          scale=3, allow_custom_value=True)
        mode = gr.Radio(["score", "generate"], value="score", label="Mode", scale=2,
                        info="score: constrained label scoring; generate: greedy text, parsed")
        include_train = gr.Checkbox(label="Also check training rows for label noise", value=False, scale=2)
        go = gr.Button("Evaluate", variant="primary", elem_id="evaluate", scale=1)
    summary = gr.Markdown(elem_id="eval-summary")
    normalized = gr.Checkbox(label="Row-normalised confusion matrices", value=False)
    with gr.Row():
        cm_a = gr.Plot(charts.confusion(None, "Val A (natural)"), elem_id="cm-val-a", show_label=False)
        cm_b = gr.Plot(charts.confusion(None, "Val B (balanced)"), elem_id="cm-val-b", show_label=False)
    with gr.Row():
        table_a = gr.Dataframe(headers=PER_CLASS, label="Val A per class", interactive=False)
        table_b = gr.Dataframe(headers=PER_CLASS, label="Val B per class", interactive=False)
    with gr.Row():
        with gr.Column():
            threshold = gr.Slider(0.01, 0.99, value=0.5, step=0.01, label="Minority-class threshold",
                                  info="Predict the minority label when its (calibrated) probability reaches this "
                                       "value.", visible=False, elem_id="threshold")
            threshold_note = gr.Markdown("_The threshold applies to two-class tasks (evaluate one to use it)._")
            save = gr.Button("Save threshold with the run (used by predict and export)", size="sm", visible=False)
            reliability = gr.Plot(charts.reliability(None), show_label=False, elem_id="reliability")
        pr = gr.Plot(charts.pr_curve(None, None), show_label=False)
    disagreements = gr.Dataframe(headers=DECISION_COLUMNS,
                                 label="Label sanity: the model confidently disagrees with the given label (the "
                                       "CSV has the whole texts; the Labels tab checks every row)",
                                 interactive=False, max_height=320, elem_id="disagreements", wrap=False,
                                 column_widths=["12%", "12%", "9%", "8%", "45%", "9%", "5%"])
    disagreements_file = gr.File(label="Disagreements CSV", interactive=False)
    with gr.Accordion("Batch predict a file", open=False):
        with gr.Row():
            predict_in = gr.File(label="File to classify (labels not needed)")
            predict_out = gr.File(label="Predictions CSV", interactive=False)
        predict_preview = gr.Dataframe(headers=["predicted_label", "confidence", "your columns…"],
                                       interactive=False, max_height=240)

    @ui_errors
    def evaluate(run_name, mode_value, with_train, norm, progress=gr.Progress()):
        from studio.evaluate.evaluator import evaluate_run
        from studio.models.cache import run_model

        if not run_name:
            raise StudioError("Pick a run to evaluate (train one first).")
        rd = ctx.run(run_name)
        progress(0, desc="Loading the model")
        ev, _ = evaluate_run(rd.path, ctx.runs_dir, mode=mode_value, include_train=with_train,
                             loaded=run_model(rd, log=lambda m: gr.Info(m)),
                             progress=lambda message, fraction: progress(fraction, desc=message))
        binary = len(ev.labels) == 2 and mode_value == "score"
        t = ev.threshold if ev.threshold is not None else 0.5
        note = ("" if binary else f"_The threshold applies to two-class tasks; this run has {len(ev.labels)} "
                                  "classes, so each row takes its most probable class._" if mode_value == "score" else
                "_Generate mode has no probabilities: no threshold._")
        return (ev, *render(ev, t if binary else None, norm, rd), gr.update(value=t, visible=binary),
                gr.update(value=note, visible=not binary), gr.update(visible=binary))

    outputs = [summary, cm_a, cm_b, table_a, table_b, pr, reliability, disagreements, disagreements_file]
    go.click(evaluate, [run, mode, include_train, normalized], [evaluation, *outputs, threshold, threshold_note, save],
             api_name="evaluate")

    def rerender(ev, t, norm, run_name):
        if ev is None:
            return [gr.skip()] * len(outputs)
        return render(ev, t if len(ev.labels) == 2 and ev.mode == "score" else None, norm,
                      ctx.run(run_name))

    threshold.release(rerender, [evaluation, threshold, normalized, run], outputs, api_visibility="private")
    normalized.change(rerender, [evaluation, threshold, normalized, run], outputs, api_visibility="private")

    @ui_errors
    def save_t(ev, t, run_name):
        from studio.evaluate.evaluator import save_threshold

        if ev is None or len(ev.labels) != 2:
            raise StudioError("Evaluate a two-class run first.")
        save_threshold(ctx.run(run_name), float(t))
        ev.threshold = float(t)
        gr.Info(f"Threshold {t:.2f} saved with {run_name}.")

    save.click(save_t, [evaluation, threshold, run], None, api_name="save_threshold")

    @ui_errors
    def predict(file, run_name):
        from studio.evaluate.evaluator import predict_file
        from studio.models.cache import run_model

        if file is None:
            return gr.skip(), gr.skip()
        if not run_name:
            raise StudioError("Pick a run first.")
        rd = ctx.run(run_name)
        out = Path(tempfile.mkdtemp(prefix="studio-predict-")) / f"{Path(file).stem}-predictions.csv"
        result = predict_file(rd.path, file, out, ctx.runs_dir, loaded=run_model(rd))
        return str(out), result.head(50)

    predict_in.upload(predict, [predict_in, run], [predict_out, predict_preview], api_name="predict_file")
    return {"run": run}


def render(ev, threshold, normalized, run: RunDir):
    report = ev.report(threshold)
    names = {"val_a": "Val A (natural)", "val_b": "Val B (balanced)"}
    flagged = ev.disagreements(threshold)
    csv_path = run.path / "disagreements-view.csv"
    flagged.to_csv(csv_path, index=False)
    view = flagged.reindex(columns=DECISION_COLUMNS).head(200)
    view["text"] = [t if len(t) <= TEXT_PREVIEW else t[:TEXT_PREVIEW - 1] + "…" for t in view["text"].astype(str)]
    pr_data = (report.get("pr_curve") or {}).get("val_a")
    return (summary_markdown(report),
            charts.confusion(report["val_a"], names["val_a"], normalized),
            charts.confusion(report["val_b"], names["val_b"], normalized),
            metrics_table(report["val_a"]).round(3), metrics_table(report["val_b"]).round(3),
            charts.pr_curve(pr_data, threshold), charts.reliability(report.get("calibration")), view, str(csv_path))


GOOD, BAD = "✅", "⚠️"


def summary_markdown(report: dict) -> str:
    """The report's lines (the same the CLI prints); what the numbers mean stands out, marked as good news or bad
    news by what it means, whether or not a number went up."""
    good = {text: ok for ok, text in judged(report)}
    lines = [f"{GOOD if good[line] else BAD} **{line}**" if line in good else line for line in summary_lines(report)]
    if report.get("conflicts"):
        lines.append(f"{len(report['conflicts'])} texts appear in the data with different labels (see Data).")
    return as_markdown(lines)
