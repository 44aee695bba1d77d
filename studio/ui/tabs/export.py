"""Export tab: one button per format (disabled, with the reason, where this machine cannot build it), the result,
a download link, and the exact commands to run it. A failed export leaves the earlier download in place."""

from __future__ import annotations

import functools

import gradio as gr

from studio.door.export import export, formats
from studio.errors import StudioError
from studio.ui.page import Page, UIContext, Values
from studio.ui.run_picker import picker


def layout(page: Page) -> None:
    page.add("export/run", picker(page.ctx.runs_dir, "export-run"))
    available = formats()
    with gr.Row():
        for f in available:
            page.add(f"export/{f.name}", gr.Button(f.title, elem_id=f"export-{f.name}", size="sm",
                                                   interactive=f.unavailable is None))
    gr.Markdown("\n".join(f"- **{f.title}** (`--format {f.name}`): {f.help}" + (
        f" — _not on this machine: {f.unavailable}_" if f.unavailable else "") for f in available))
    page.add("export/result", gr.Markdown(elem_id="export-result"))
    page.add("export/download", gr.File(label="Download", interactive=False, elem_id="export-download"))
    page.add("export/archive", gr.State(None))


def wire(page: Page) -> None:
    for f in formats():
        # The download link changes only after a successful export: a failure (shown in the result and as a
        # message) leaves the earlier export's link in place.
        handler = functools.partial(export_format, fmt=f.name)
        handler.__name__ = f"export_{f.name}"
        page.on(page[f"export/{f.name}"].click, handler, ["export/run"], ["export/result", "export/archive"],
                progress=True, api_name=f"export_{f.name}").success(
            lambda path: path if path else gr.skip(), page["export/archive"], page["export/download"],
            api_visibility="private")


def export_format(ctx: UIContext, values: Values, fmt: str) -> dict:
    run = values["export/run"]
    if not run:
        raise StudioError("Pick a run to export (train one first).")
    values.progress(f"Exporting {fmt}: loading the trained model", 0.02)
    stages: list[str] = []

    def stage(message: str) -> None:  # each stage the export logs moves the bar on, and names the stage
        stages.append(message)
        values.progress(f"Exporting {fmt}: {message}", min(0.95, 1 - 0.6 ** len(stages)))

    exported = export(run, fmt, None, ctx.runs_dir, names_only=True, zipped=fmt in ("classifier", "adapters"),
                      log=stage)
    return {"export/result": exported.markdown(),
            "export/archive": str(exported.download) if exported.download else None}
