"""Playground tab: type a text, see the label and the class probabilities, before and after training."""

from __future__ import annotations

import gradio as gr

from studio.errors import StudioError
from studio.train.runs import run_minority_label
from studio.ui import charts
from studio.ui.context import UIContext, ui_errors


def build(ctx: UIContext) -> dict:
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=ctx.run_choices(), value=ctx.newest_run(), elem_id="play-run", scale=3,
                          allow_custom_value=True)
    text = gr.Textbox(label="Text to classify", lines=4, elem_id="play-text",
                      placeholder="e.g. Am I allowed to post a link to my shop in my signature?")
    go = gr.Button("Classify", variant="primary", elem_id="classify")
    verdict = gr.Markdown(elem_id="play-verdict")
    with gr.Row():
        after = gr.Plot(charts.probabilities({}, "After training"), show_label=False)
        before = gr.Plot(charts.probabilities({}, "Before training (same model, adapter off)"), show_label=False)

    @ui_errors
    def classify(run_name, value):
        from studio.evaluate.evaluator import predict_frame
        from studio.models.cache import run_model

        if not run_name:
            raise StudioError("Pick a run (train one first).")
        if not (value or "").strip():
            raise StudioError("Type or paste a text first.")
        rd = ctx.run(run_name)
        model, tokenizer, meta = run_model(rd, log=lambda m: gr.Info(m))
        facts = rd.read_run_json()
        minority = run_minority_label(facts)
        labels = list(meta["label_codes"])
        trained = predict_frame(model, tokenizer, meta, [value], facts.get("threshold"), minority).iloc[0]
        with model.disable_adapter():
            untrained = predict_frame(model, tokenizer, meta, [value], facts.get("threshold"), minority).iloc[0]
        probs_after = {lb: float(trained[f"p_{lb}"]) for lb in labels}
        probs_before = {lb: float(untrained[f"p_{lb}"]) for lb in labels}
        text_out = (f"## {trained['predicted_label']}  (`{trained['predicted_code']}`, "
                    f"{trained['confidence']:.1%})\nBefore training the same model said "
                    f"**{untrained['predicted_label']}** ({untrained['confidence']:.1%}).")
        return (text_out, charts.probabilities(probs_after, "After training"),
                charts.probabilities(probs_before, "Before training (same model, adapter off)"))

    go.click(classify, [run, text], [verdict, after, before], api_name="classify")
    text.submit(classify, [run, text], [verdict, after, before], api_visibility="private")
    return {"run": run}
