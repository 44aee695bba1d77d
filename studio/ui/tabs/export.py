"""Export tab: one button per format, the result, a download link, and the exact commands to run it."""

from __future__ import annotations

import gradio as gr

from studio.errors import StudioError
from studio.export.formats import FORMAT_HELP, FORMATS
from studio.ui.context import UIContext, ui_errors


def build(ctx: UIContext) -> dict:
    run = gr.Dropdown(label="Run", choices=ctx.run_choices(), elem_id="export-run", allow_custom_value=True)
    buttons = {}
    with gr.Row():
        for fmt in FORMATS:
            buttons[fmt] = gr.Button(fmt, elem_id=f"export-{fmt}", size="sm")
    gr.Markdown("\n".join(f"- **{k}**: {v}" for k, v in FORMAT_HELP.items()))
    result = gr.Markdown(elem_id="export-result")
    download = gr.File(label="Download", interactive=False, elem_id="export-download")

    @ui_errors
    def do_export(run_name, fmt):
        from studio.export.exporter import export_run, zip_export
        from studio.models.cache import run_model

        if not run_name:
            raise StudioError("Pick a run to export (train one first).")
        rd = ctx.run(run_name)
        gr.Info(f"Exporting {fmt}: building and checking it, this can take a minute.")
        res = export_run(rd.path, fmt, None, ctx.runs_dir, loaded=run_model(rd), log=lambda m: None)
        check = ("" if res.agreement is None else f"Label agreement with the trained model: **{res.agreement:.1%}** "
                 f"of {res.verified_rows} validation rows" + ("" if res.passed else " (below target!)") + ".")
        warn = "\n".join(f"⚠ {w}" for w in res.warnings)
        text = (f"### {fmt} exported\nFolder: `{res.path}`\n\n{check}\n\n{warn}\n\nFiles: "
                f"{', '.join(res.files)}\n\n#### How to run it\n{res.commands}")
        archive = zip_export(res.path) if fmt == "adapters" else None
        return text, (str(archive) if archive else None)

    for fmt, button in buttons.items():
        button.click(lambda r, f=fmt: do_export(r, f), run, [result, download], api_name=f"export_{fmt}")
    return {"run": run}
