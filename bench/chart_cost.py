"""What drawing the Train tab's charts costs the browser: a Gradio page with the tab's three plotly charts
(`gr.Plot`, as `studio/ui/tabs/train.py` sends them) in Debian's chromium, updated 20 times by a button, and the
page's main-thread time per update from DevTools' counters. Variants: which charts an update draws, and their style.

    python bench/chart_cost.py --points 400 --variants none loss memory all all+markers all+trimmed-template
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from browser_vs_cli import launch_chromium  # noqa: E402

METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


def records(points: int) -> list[dict]:
    train = [{"kind": "train", "step": i, "loss": 1.0 / (i + 1), "learning_rate": 1e-4, "rss_gb": 6.0,
              "device": "cpu", "mem_total_gb": 24.0} for i in range(1, points + 1)]
    return train + [{"kind": "eval", "step": 10 * i, "macro_f1": 0.5 + 0.01 * i, "minority_recall": 0.4}
                    for i in range(1, max(2, points // 10))]


def figures(variant: str, points: int):
    """The update's outputs: a figure per chart it draws, gr.skip() for the others."""
    import gradio as gr
    import plotly.io as pio

    from studio.ui import charts

    rows = records(points)
    figs = {"loss": charts.loss(rows), "memory": charts.memory(rows), "evals": charts.eval_points(rows)}
    name, _, style = variant.partition("+")
    if style == "markers":
        figs["loss"].update_traces(mode="lines+markers", selector=dict(name="loss"))
    if style == "trimmed-template":
        layout = pio.templates["plotly_white"].to_plotly_json()["layout"]
        keep = {k: layout[k] for k in ("colorway", "font", "hovermode", "hoverlabel", "paper_bgcolor",
                                       "plot_bgcolor", "xaxis", "yaxis", "title")}
        for fig in figs.values():
            fig.update_layout(template={"layout": keep})
    drawn = set(figs) if name == "all" else {name} & set(figs)
    return [figs[k] if k in drawn else gr.skip() for k in ("loss", "memory", "evals")]


def measure(variant: str, points: int, updates: int, port: int) -> dict:
    import gradio as gr
    from playwright.sync_api import sync_playwright

    drawn = [points]

    def update():  # a step more each time, as the Train tab's charts grow (the page skips a figure it already has)
        drawn[0] += 1
        return figures(variant, drawn[0])

    with gr.Blocks() as demo:
        plots = [gr.Plot(), gr.Plot(), gr.Plot()]
        button = gr.Button("draw", elem_id="draw")
        button.click(update, [], plots, queue=False, show_progress="hidden")
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#draw")
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.click("#draw")
            time.sleep(3)

            def counters() -> dict:
                return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

            before = counters()
            for _ in range(updates):
                page.click("#draw")
                time.sleep(1.5)
            after = counters()
            browser.close()
    finally:
        demo.close()
    return {"variant": variant, "points": points,
            **{f"{k}_ms": round(1000 * (after[k] - before[k]) / updates, 1) for k in METRICS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=400, help="training records in each chart")
    parser.add_argument("--variants", nargs="+", default=["none", "loss", "memory", "evals", "all"],
                        help="the charts drawn (none, loss, memory, evals, all), optionally +markers or "
                             "+trimmed-template")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--port", type=int, default=7911)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for variant in args.variants:
        rows.append(measure(variant, args.points, args.updates, args.port))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": "Debian's chromium, headless", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
