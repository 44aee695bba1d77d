"""The Gradio app: tabs over the engine, wired together. Owns no training, metric or file logic."""

from __future__ import annotations

import gradio as gr

from studio.config import RunConfig
from studio.ui.context import UIContext
from studio.ui.forms import Form
from studio.ui.tabs import data, evaluate, export, model, playground, runs, train

CSS = """
.studio-error {border-left: 4px solid #d33; background: #fff0f0; padding: 8px 12px; border-radius: 4px;}
.studio-progress {padding: 6px 0;}
.studio-progress .bar {height: 10px; background: #eee; border-radius: 5px; margin-top: 6px; overflow: hidden;}
.studio-progress .bar div {height: 10px; background: #3b82f6;}
"""
INTRO = ("# Studio: fine-tune an LLM into a text classifier\n"
         "Data → Model & LoRA → Train → Evaluate → Playground → Export. Everything here is also a command: "
         "`python -m studio --help`.")


def build_app(runs_dir: str = "runs", max_upload_mb: float = 200.0, config: RunConfig | None = None) -> gr.Blocks:
    """``config`` prefills every form (``launch.py --config run.json``); default: the embedded model + sample."""
    ctx = UIContext(runs_dir=runs_dir, max_upload_mb=max_upload_mb)
    form = Form(config or RunConfig())
    with gr.Blocks(title="Studio") as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("1 · Data", id="data"):
                d = data.build(ctx, form)
            with gr.Tab("2 · Model & LoRA", id="model"):
                m = model.build(ctx, form)
            with gr.Tab("3 · Train", id="train"):
                t = train.build(ctx, form)
            with gr.Tab("4 · Evaluate", id="evaluate") as eval_tab:
                e = evaluate.build(ctx)
            with gr.Tab("5 · Playground", id="playground") as play_tab:
                p = playground.build(ctx)
            with gr.Tab("6 · Export", id="export") as export_tab:
                x = export.build(ctx)
            with gr.Tab("7 · Runs", id="runs") as runs_tab:
                r = runs.build(ctx)

        check_fn, check_inputs = form.bind(d["run_check"])
        d["check"].click(check_fn, check_inputs, d["check_outputs"], api_name="check_data").then(
            m["check"], m["check_inputs"], m["check_outputs"], api_visibility="private").then(
            m["fit"], m["fit_inputs"], m["fit_outputs"], api_visibility="private")

        for tab, dropdown in ((eval_tab, e["run"]), (play_tab, p["run"]), (export_tab, x["run"])):
            tab.select(ctx.run_dropdown_update, dropdown, dropdown, queue=False, api_visibility="private")
        runs_tab.select(r["refresh"], None, r["refresh_outputs"], queue=False, api_visibility="private")
        # a reloaded page reattaches to the running job
        demo.load(t["poll"], None, t["poll_outputs"], queue=False, api_visibility="private")
        demo.load(t["show_gpus"], None, t["gpus"], queue=False, api_visibility="private")
        demo.load(m["check"], m["check_inputs"], m["check_outputs"], queue=False, api_visibility="private")
        demo.load(m["fit"], m["fit_inputs"], m["fit_outputs"], queue=False, api_visibility="private")
    return demo


def launch(args, block: bool = True):
    """Start the app from launch.py's arguments; ``block=False`` returns the running app (tests)."""
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    config = RunConfig.load(args.config) if args.config else None
    demo = build_app(args.runs_dir, args.max_upload_mb, config)
    demo.queue(default_concurrency_limit=4)
    from starlette.middleware import Middleware

    from studio.ui.security import LoginRequired

    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth,
                max_file_size=int(args.max_upload_mb * 2**20), css=CSS, show_error=True,
                theme=gr.themes.Soft(), footer_links=["api"], prevent_thread_lock=not block, quiet=not block,
                app_kwargs={"middleware": [Middleware(LoginRequired)]})
    return 0 if block else demo
