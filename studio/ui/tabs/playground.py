"""Playground tab: type a text, see the label and the class probabilities, before and after training."""

from __future__ import annotations

import gradio as gr

from studio.door.predict import classify as classify_text
from studio.ui import charts
from studio.ui.html import notify
from studio.ui.page import Page, UIContext, Values
from studio.ui.run_picker import picker

AFTER, BEFORE = "The classifier in use", "Each model (before training: the same model, adapter off)"
FIRST = "The fine-tuned LLM is still training: its answer and the blend's show here once it is evaluated"
VIEW_NAMES = {"llm": "fine-tuned LLM", "classic": "classic model", "blend": "blend", "untrained": "before training"}
OUTPUTS = ["playground/verdict", "playground/after", "playground/before"]


def layout(page: Page) -> None:
    with gr.Row():
        page.add("playground/run", picker(page.ctx.runs_dir, "play-run", scale=3))
    page.add("playground/text", gr.Textbox(label="Text to classify", lines=4, elem_id="play-text",
                                           placeholder="e.g. Am I allowed to post a link to my shop in my signature?"))
    page.add("playground/go", gr.Button("Classify", variant="primary", elem_id="classify"))
    page.add("playground/verdict", gr.Markdown(elem_id="play-verdict"))
    with gr.Row():
        page.add("playground/after", gr.Plot(charts.probabilities({}, AFTER), show_label=False))
        page.add("playground/before", gr.Plot(charts.probability_views({}, BEFORE), show_label=False))


def wire(page: Page) -> None:
    inputs = ["playground/run", "playground/text"]
    page.on(page["playground/go"].click, classify, inputs, OUTPUTS, api_name="classify")
    page.on(page["playground/text"].submit, classify, inputs, OUTPUTS, api_visibility="private")


def classify(ctx: UIContext, values: Values) -> dict:
    result = classify_text(values["playground/run"], values["playground/text"], ctx.runs_dir, names_only=True,
                           log=notify)
    return {"playground/verdict": result.markdown(),
            "playground/after": charts.probabilities(result.probabilities,
                                                     f"{AFTER}: {VIEW_NAMES[result.in_use]}"),
            "playground/before": charts.probability_views(
                {VIEW_NAMES[name]: probs for name, probs in result.views.items()}, BEFORE)
            if result.before_label is not None else charts.probability_views({}, BEFORE, FIRST)}
