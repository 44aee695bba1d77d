"""Export tab: one button per format (disabled, with the reason, where this machine cannot build it), the result,
a download link, and the exact commands to run it. A failed export leaves the earlier download in place."""

from __future__ import annotations

import gradio as gr

from studio.errors import StudioError
from studio.export.formats import FORMAT_HELP, FORMATS, unavailable
from studio.ui.context import UIContext, ui_errors


def build(ctx: UIContext) -> dict:
    run = gr.Dropdown(label="Run", choices=ctx.run_choices(), value=ctx.newest_run(), elem_id="export-run",
                      allow_custom_value=True)
    buttons, reasons = {}, {fmt: unavailable(fmt) for fmt in FORMATS}
    with gr.Row():
        for fmt in FORMATS:
            buttons[fmt] = gr.Button(fmt, elem_id=f"export-{fmt}", size="sm", interactive=reasons[fmt] is None)
    gr.Markdown("\n".join(f"- **{k}**: {v}" + (f" — _not on this machine: {reasons[k]}_" if reasons[k] else "")
                          for k, v in FORMAT_HELP.items()))
    result = gr.Markdown(elem_id="export-result")
    download = gr.File(label="Download", interactive=False, elem_id="export-download")

    archive = gr.State(None)

    @ui_errors
    def do_export(run_name, fmt, progress=gr.Progress()):
        from studio.export.exporter import export_run, zip_export
        from studio.models.cache import run_model

        if not run_name:
            raise StudioError("Pick a run to export (train one first).")
        rd = ctx.run(run_name)
        progress(0, desc=f"Exporting {fmt}: building it, then reloading it to check its answers")
        res = export_run(rd.path, fmt, None, ctx.runs_dir, loaded=run_model(rd), log=lambda m: None)
        check = ("" if res.agreement is None else f"Label agreement with the trained model: **{res.agreement:.1%}** "
                 f"of {res.verified_rows} validation rows" + ("" if res.passed else " (below target!)") + ".")
        warn = "\n".join(f"⚠ {w}" for w in res.warnings)
        text = (f"### {fmt} exported\nFolder: `{res.path}`\n\n{check}\n\n{warn}\n\nFiles: "
                f"{', '.join(res.files)}\n\n#### How to run it\n{res.commands}")
        return text, (str(zip_export(res.path)) if fmt == "adapters" else None)

    def show_download(path):
        return path if path else gr.skip()

    for fmt, button in buttons.items():
        # The download link changes only after a successful export: a failure (shown in the result and as a
        # message) leaves the earlier export's link in place.
        button.click(lambda r, f=fmt: do_export(r, f), run, [result, archive], api_name=f"export_{fmt}").success(
            show_download, archive, download, api_visibility="private")
    return {"run": run}
