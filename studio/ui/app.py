"""The Gradio app: tabs over the engine, wired together. Owns no training, metric or file logic."""

from __future__ import annotations

import logging

import gradio as gr
from starlette.middleware import Middleware

from studio.config import RunConfig
from studio.door.passwords import read_auth_file
from studio.door.training import interrupted_config, warm_up
from studio.ui import run_picker
from studio.ui.forms import Form
from studio.ui.frontend import RepairedAssets
from studio.ui.page import Page, UIContext, Values
from studio.ui.security import LoginGuard, LoginRequired, Sessions, audit, checker
from studio.ui.tabs import data as data_tab
from studio.ui.tabs import evaluate as evaluate_tab
from studio.ui.tabs import export as export_tab
from studio.ui.tabs import labels as labels_tab
from studio.ui.tabs import model as model_tab
from studio.ui.tabs import playground as playground_tab
from studio.ui.tabs import runs as runs_tab
from studio.ui.tabs import train as train_tab

CSS = """
.studio-error {border-left: 4px solid #d33; background: #fff0f0; padding: 8px 12px; border-radius: 4px;}
.studio-bad {border-left: 4px solid #d33; background: #fff0f0; padding: 6px 12px; border-radius: 4px; margin: 4px 0;}
.studio-good {border-left: 4px solid #16a34a; background: #f0fdf4; padding: 6px 12px; border-radius: 4px;
  margin: 4px 0;}
.studio-progress {padding: 6px 0;}
.studio-progress .bar {height: 10px; background: #eee; border-radius: 5px; margin-top: 6px; overflow: hidden;}
.studio-progress .bar div {height: 10px; background: #3b82f6;}
"""
TABS = [("data", "1 · Data", data_tab), ("labels", "2 · Labels", labels_tab), ("model", "3 · Model & LoRA", model_tab),
        ("train", "4 · Train", train_tab), ("evaluate", "5 · Evaluate", evaluate_tab),
        ("playground", "6 · Playground", playground_tab), ("export", "7 · Export", export_tab),
        ("runs", "8 · Runs", runs_tab)]
INTRO = ("# Studio: fine-tune an LLM into a text classifier\n"
         "Data → Labels → Model & LoRA → Train → Evaluate → Playground → Export. Everything here is also a command: "
         "`python -m studio --help`.")


def build_app(runs_dir: str = "runs", max_upload_mb: float = 200.0, config: RunConfig | None = None,
              logout: bool = False) -> gr.Blocks:
    """``config`` prefills every form (``launch.py --config run.json``); default: the embedded model + sample.
    ``logout``: a "Log out" control (the app has a password)."""
    page = Page(UIContext(runs_dir=runs_dir, max_upload_mb=max_upload_mb), Form(config or RunConfig()))
    with gr.Blocks(title="Studio") as demo:
        with gr.Row():
            gr.Markdown(INTRO)
            if logout:
                gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="logout")
        with gr.Tabs():
            tabs = {}
            for tab_id, title, module in TABS:
                with gr.Tab(title, id=tab_id) as tabs[tab_id]:
                    module.layout(page)
        setting_changes = model_tab.wire(page)
        for module in (data_tab, labels_tab, train_tab, evaluate_tab, playground_tab, export_tab, runs_tab):
            module.wire(page)
        wire_across_tabs(page, demo, tabs, setting_changes)
    return demo


def wire_across_tabs(page: Page, demo: gr.Blocks, tabs: dict, setting_changes: dict) -> None:
    """What ties the tabs together: a data check refreshes the Model & LoRA tab's plan and estimate, a preset that
    changed the data settings checks the data again, the run pickers follow new runs, a reloaded page reattaches to
    the running job."""
    quiet = dict(api_visibility="private")
    plan = dict(outputs=model_tab.PLAN_OUTPUTS, config=True, **quiet)
    fit = dict(inputs=["model/gpu"], outputs=model_tab.FIT_OUTPUTS, config=True, **quiet)
    checked = page.on(page["data/check"].click, data_tab.run_check, ["data/rejected"], data_tab.CHECK_OUTPUTS,
                      config=True, progress=True, api_name="check_data")
    page.then(page.then(checked, model_tab.check, **plan), model_tab.will_it_fit, **fit)
    for event in setting_changes.values():
        rechecked = page.then(event, recheck_data, ["model/data_changed"], data_tab.CHECK_OUTPUTS, config=True,
                              progress=True, **quiet)
        page.then(rechecked, model_tab.check, **plan)
    for tab_id, picker in (("evaluate", "evaluate/run"), ("playground", "playground/run"), ("export", "export/run")):
        seen = gr.State(page[picker].value)  # per page: the newest run this picker has shown
        tabs[tab_id].select(lambda current, newest: run_picker.refresh(page.ctx.runs_dir, current, newest),
                            [page[picker], seen], [page[picker], seen], queue=False, **quiet)
    page.on(tabs["runs"].select, runs_tab.refresh, [], runs_tab.REFRESH_OUTPUTS, queue=False, **quiet)
    # a reload reattaches to the running job (or offers to resume an interrupted one), and to batch predictions
    page.on(demo.load, train_tab.poll, ["train/seen"], train_tab.POLL_OUTPUTS, queue=False, **quiet)
    page.on(demo.load, evaluate_tab.prediction, [], evaluate_tab.PREDICTION, queue=False, **quiet)
    page.on(demo.load, train_tab.show_gpus, [], ["train/gpus"], queue=False, **quiet)
    page.on(demo.load, model_tab.check, queue=False, **plan)
    page.on(demo.load, model_tab.will_it_fit, queue=False, **fit)


def recheck_data(ctx: UIContext, values: Values) -> dict:
    """A preset or plan that changed the data settings: the Data tab's counts follow."""
    return data_tab.run_check(ctx, values) if values["model/data_changed"] else {}


QUEUE_CHECK_S = 0.05  # how often Gradio's queue looks for work while it has none
QUEUE_PROGRESS_S = 0.1  # and for progress to send


def pace_the_queue(demo: gr.Blocks) -> None:
    """Gradio's own pace on Windows, here too: elsewhere its queue looks for work every 1 ms and for progress every
    10 ms, 3.3 CPU-s a minute of an app nobody uses (0.6 at this pace), taken from the training on a 2-core CPU
    (docs/benchmarks.md, "The browser and the CLI"). An event then waits at most 50 ms to start."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_CHECK_S)
        queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, QUEUE_PROGRESS_S)


def launch(args, block: bool = True):
    """Start the app from launch.py's arguments; ``block=False`` returns the running app (tests)."""
    users = read_auth_file(args.auth_file) if getattr(args, "auth_file", None) else {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        users[user] = password
    config = RunConfig.load(args.config) if args.config else interrupted_config(args.runs_dir)
    demo = build_app(args.runs_dir, args.max_upload_mb, config, logout=bool(users))
    warm_up()  # the first Start finds unsloth imported (GPU machines; nothing on a CPU)
    demo.queue(default_concurrency_limit=4)
    pace_the_queue(demo)
    if users and not audit.handlers:  # one line per login attempt in the app's log
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s studio.auth %(message)s"))
        audit.addHandler(handler)
    sessions = Sessions(3600 * float(getattr(args, "session_hours", 12) or 12))
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=checker(users) if users else None,
                max_file_size=int(args.max_upload_mb * 2**20), css=CSS, show_error=True,
                theme=gr.themes.Soft(), footer_links=["api"], prevent_thread_lock=True, quiet=True,
                app_kwargs={"middleware": [Middleware(LoginRequired, guard=LoginGuard(), sessions=sessions),
                                           Middleware(RepairedAssets)]})  # an idle page draws no frames
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
