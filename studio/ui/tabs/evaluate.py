"""Evaluate tab: Val A and Val B side by side (confusion heatmaps, per-class tables, macro-F1, minority recall,
zero-shot baseline), the threshold slider with the PR curve, disagreements and batch predictions."""

from __future__ import annotations

import tempfile
from pathlib import Path
import gradio as gr

from studio.errors import StudioError
from studio.evaluate.report import metrics_table
from studio.train.runs import RunDir
from studio.ui import charts
from studio.ui.context import UIContext, md_list, ui_errors


def build(ctx: UIContext) -> dict:
    evaluation = gr.State(None)
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=ctx.run_choices(), elem_id="eval-run", scale=3,
                          allow_custom_value=True)
        mode = gr.Radio(["score", "generate"], value="score", label="Mode", scale=2,
                        info="score: constrained label scoring; generate: greedy text, parsed")
        include_train = gr.Checkbox(label="Also check training rows for label noise", value=False, scale=2)
        go = gr.Button("Evaluate", variant="primary", elem_id="evaluate", scale=1)
    summary = gr.Markdown(elem_id="eval-summary")
    normalized = gr.Checkbox(label="Row-normalised confusion matrices", value=False)
    with gr.Row():
        cm_a = gr.Plot(charts.confusion(None, "Val A (natural)"), elem_id="cm-val-a")
        cm_b = gr.Plot(charts.confusion(None, "Val B (balanced)"), elem_id="cm-val-b")
    with gr.Row():
        table_a = gr.Dataframe(label="Val A per class", interactive=False)
        table_b = gr.Dataframe(label="Val B per class", interactive=False)
    with gr.Row():
        with gr.Column():
            threshold = gr.Slider(0.01, 0.99, value=0.5, step=0.01, label="Minority-class threshold (binary tasks)",
                                  info="Predict the minority class when its probability reaches this value.")
            save = gr.Button("Save threshold with the run (used by predict and export)", size="sm")
        pr = gr.Plot(charts.pr_curve(None, None))
    disagreements = gr.Dataframe(label="Label sanity: the model confidently disagrees with the given label",
                                 interactive=False, max_height=320)
    disagreements_file = gr.File(label="Disagreements CSV", interactive=False)
    with gr.Accordion("Batch predict a file", open=False):
        with gr.Row():
            predict_in = gr.File(label="File to classify (labels not needed)")
            predict_out = gr.File(label="Predictions CSV", interactive=False)
        predict_preview = gr.Dataframe(interactive=False, max_height=240)

    @ui_errors
    def evaluate(run_name, mode_value, with_train, norm):
        from studio.evaluate.evaluator import evaluate_run
        from studio.models.cache import run_model

        if not run_name:
            raise StudioError("Pick a run to evaluate (train one first).")
        rd = ctx.run(run_name)
        ev, _ = evaluate_run(rd.path, ctx.runs_dir, mode=mode_value, include_train=with_train,
                             loaded=run_model(rd, log=lambda m: gr.Info(m)))
        t = ev.threshold if ev.threshold is not None else 0.5
        return (ev, *render(ev, t, norm, rd), gr.update(value=t, interactive=len(ev.labels) == 2 and
                                                        mode_value == "score"))

    outputs = [summary, cm_a, cm_b, table_a, table_b, pr, disagreements, disagreements_file]
    go.click(evaluate, [run, mode, include_train, normalized], [evaluation, *outputs, threshold], api_name="evaluate")

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
    names = {"val_a": "Val A (natural)", "val_b": "Val B (balanced)", "train": "Train"}
    rows = []
    for key in ("accuracy", "macro_f1", "minority_recall"):
        cells = []
        for name in ("val_a", "val_b"):
            value = report[name][key]
            base = (report.get("baseline") or {}).get(name, {}).get(key)
            cells.append("-" if value is None else f"**{value:.3f}**" + ("" if base is None else f" (untrained "
                                                                                               f"{base:.3f})"))
        rows.append(f"| {key.replace('_', ' ')} | {cells[0]} | {cells[1]} |")
    head = (f"Mode **{report['mode']}** · minority class **{report['minority_label']}** · "
            f"{report['val_a']['n']} Val A rows, {report['val_b']['n']} Val B rows"
            + (f" · threshold {threshold:.2f}" if threshold is not None else "")
            + (f" · **{report['invalid']} invalid generations**" if report.get("invalid") else ""))
    table = "| metric | Val A (natural) | Val B (balanced) |\n|---|---|---|\n" + "\n".join(rows)
    notes = md_list(report.get("notes", [])) if report.get("notes") else ""
    flagged = ev.disagreements(threshold)
    csv_path = run.path / "disagreements-view.csv"
    flagged.to_csv(csv_path, index=False)
    conflicts = ""
    if report["conflicts"]:
        conflicts = f"\n\n{len(report['conflicts'])} texts appear in the data with different labels (see Data)."
    pr_data = (report.get("pr_curve") or {}).get("val_a")
    return (head + "\n\n" + table + ("\n\n" + notes if notes else "") + conflicts,
            charts.confusion(report["val_a"], names["val_a"], normalized),
            charts.confusion(report["val_b"], names["val_b"], normalized),
            metrics_table(report["val_a"]).round(3), metrics_table(report["val_b"]).round(3),
            charts.pr_curve(pr_data, threshold), flagged.head(200), str(csv_path))
