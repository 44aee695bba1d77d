"""The Gradio app: tabs over the engine, wired together. Owns no training, metric or file logic."""

from __future__ import annotations

import logging

import gradio as gr

from studio.config import RunConfig
from studio.ui.context import UIContext
from studio.ui.forms import Form
from studio.ui.tabs import data, evaluate, export, labels, model, playground, runs, train

CSS = """
.studio-error {border-left: 4px solid #d33; background: #fff0f0; padding: 8px 12px; border-radius: 4px;}
.studio-bad {border-left: 4px solid #d33; background: #fff0f0; padding: 6px 12px; border-radius: 4px; margin: 4px 0;}
.studio-good {border-left: 4px solid #16a34a; background: #f0fdf4; padding: 6px 12px; border-radius: 4px;
  margin: 4px 0;}
.studio-progress {padding: 6px 0;}
.studio-progress .bar {height: 10px; background: #eee; border-radius: 5px; margin-top: 6px; overflow: hidden;}
.studio-progress .bar div {height: 10px; background: #3b82f6;}
"""
INTRO = ("# Studio: fine-tune an LLM into a text classifier\n"
         "Data → Labels → Model & LoRA → Train → Evaluate → Playground → Export. Everything here is also a command: "
         "`python -m studio --help`.")


def build_app(runs_dir: str = "runs", max_upload_mb: float = 200.0, config: RunConfig | None = None,
              logout: bool = False) -> gr.Blocks:
    """``config`` prefills every form (``launch.py --config run.json``); default: the embedded model + sample.
    ``logout``: a "Log out" control (the app has a password)."""
    ctx = UIContext(runs_dir=runs_dir, max_upload_mb=max_upload_mb)
    form = Form(config or RunConfig())
    with gr.Blocks(title="Studio") as demo:
        with gr.Row():
            gr.Markdown(INTRO)
            if logout:
                gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="logout")
        with gr.Tabs():
            with gr.Tab("1 · Data", id="data"):
                d = data.build(ctx, form)
            with gr.Tab("2 · Labels", id="labels"):
                lb = labels.build(ctx, form)
            with gr.Tab("3 · Model & LoRA", id="model"):
                m = model.build(ctx, form)
            with gr.Tab("4 · Train", id="train"):
                t = train.build(ctx, form)
            with gr.Tab("5 · Evaluate", id="evaluate") as eval_tab:
                e = evaluate.build(ctx)
            with gr.Tab("6 · Playground", id="playground") as play_tab:
                p = playground.build(ctx)
            with gr.Tab("7 · Export", id="export") as export_tab:
                x = export.build(ctx)
            with gr.Tab("8 · Runs", id="runs") as runs_tab:
                r = runs.build(ctx)

        lb["wire"]()  # the Labels tab's events need the Model & LoRA settings, built after it
        check_fn, check_inputs = form.bind(d["run_check"])

        def recheck(data):  # a preset or plan that changed the data settings: the Data tab's counts follow
            return d["run_check"](data) if data[m["data_changed"]] else {c: gr.skip() for c in d["check_outputs"]}

        recheck_fn, recheck_inputs = form.bind(recheck, m["data_changed"])
        for event in m["changes"]:
            event.then(recheck_fn, recheck_inputs, d["check_outputs"], api_visibility="private").then(
                m["check"], m["check_inputs"], m["check_outputs"], api_visibility="private")
        d["check"].click(check_fn, check_inputs, d["check_outputs"], api_name="check_data").then(
            m["check"], m["check_inputs"], m["check_outputs"], api_visibility="private").then(
            m["fit"], m["fit_inputs"], m["fit_outputs"], api_visibility="private")

        for tab, dropdown in ((eval_tab, e["run"]), (play_tab, p["run"]), (export_tab, x["run"])):
            seen = gr.State(dropdown.value)  # per page: the newest run this picker has shown
            tab.select(ctx.run_dropdown_update, [dropdown, seen], [dropdown, seen], queue=False,
                       api_visibility="private")
        runs_tab.select(r["refresh"], None, r["refresh_outputs"], queue=False, api_visibility="private")
        # a reloaded page reattaches to the running job
        demo.load(t["poll"], None, t["poll_outputs"], queue=False, api_visibility="private")
        demo.load(t["show_gpus"], None, t["gpus"], queue=False, api_visibility="private")
        demo.load(m["check"], m["check_inputs"], m["check_outputs"], queue=False, api_visibility="private")
        demo.load(m["fit"], m["fit_inputs"], m["fit_outputs"], queue=False, api_visibility="private")
    return demo


def launch(args, block: bool = True):
    """Start the app from launch.py's arguments; ``block=False`` returns the running app (tests)."""
    from starlette.middleware import Middleware

    from studio.ui.security import LoginGuard, LoginRequired, Sessions, audit, checker, read_auth_file

    users = read_auth_file(args.auth_file) if getattr(args, "auth_file", None) else {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        users[user] = password
    config = RunConfig.load(args.config) if args.config else None
    demo = build_app(args.runs_dir, args.max_upload_mb, config, logout=bool(users))
    demo.queue(default_concurrency_limit=4)
    if users and not audit.handlers:  # one line per login attempt in the app's log
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s studio.auth %(message)s"))
        audit.addHandler(handler)
    sessions = Sessions(3600 * float(getattr(args, "session_hours", 12) or 12))
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=checker(users) if users else None,
                max_file_size=int(args.max_upload_mb * 2**20), css=CSS, show_error=True,
                theme=gr.themes.Soft(), footer_links=["api"], prevent_thread_lock=True, quiet=True,
                app_kwargs={"middleware": [Middleware(LoginRequired, guard=LoginGuard(), sessions=sessions)]})
    if not block:
        return demo
    print(f"Studio is running on {demo.local_url}" + (f" and on {demo.share_url}" if demo.share_url else "")
          + (" (password required)" if users else "") + ". Ctrl-C stops it."
          + ("" if args.share or args.host not in ("127.0.0.1", "localhost") else
             " Other machines: --host 0.0.0.0 with --auth; a public link: --share."), flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0
