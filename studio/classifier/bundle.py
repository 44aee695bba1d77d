"""A classifier bundle: one folder with everything needed to classify new texts on another machine, without the
runs folder: the adapter (its card: codes, rubric, prompt format, calibration), the classic model when the
classifier in use needs it, the decision (the candidates' rules and the one in use), the threshold, the labels, what
it scored, a model card. ``studio.classifier.engine`` reads it the way it reads a run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from studio.errors import StudioError
from studio.files import write_json_atomic
from studio.runs.folder import ADAPTER_CARD, CLASSIC_MODEL, RunDir, load_classic_file, read_adapter_card

BUNDLE_RECORD = "classifier.json"
FORMAT_VERSION = 1


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / BUNDLE_RECORD).exists()


class Bundle:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.record = json.loads((self.path / BUNDLE_RECORD).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StudioError(f"{self.path} is not a classifier bundle ({exc}): export one with python -m studio "
                              "export RUN --format classifier.") from None
        if self.record.get("format_version", 0) > FORMAT_VERSION:
            raise StudioError(f"{self.path} was written by a newer studio (bundle format "
                              f"{self.record['format_version']}); update the studio to load it.")

    @property
    def name(self) -> str:
        return self.record["name"]

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    def has_adapter_card(self) -> bool:
        return read_adapter_card(self.adapter) is not None

    def adapter_card(self) -> dict:
        card = read_adapter_card(self.adapter)
        if card is None:
            raise StudioError(f"{self.adapter} has no {ADAPTER_CARD}: the bundle is incomplete; export it again.")
        return card

    def classifier(self) -> dict | None:
        return self.record.get("decision")

    def load_classic(self):
        return load_classic_file(self.path / CLASSIC_MODEL)

    def threshold(self) -> float | None:
        return self.record.get("threshold")

    def minority_label(self) -> str | None:
        return self.record.get("minority_label")

    def info(self) -> dict:
        return dict(self.record.get("info") or {})


def write_bundle(folder: Path, run: RunDir, use: str | None = None) -> dict:
    """The run's classifier as a bundle in ``folder`` (which holds the adapter already): the decision (``use``: the
    candidate to carry as in use), the classic model when it is needed, the threshold and what it scored."""
    decision = run.classifier()
    if decision is not None and use not in (None, "auto"):
        if use not in decision["rules"]:
            raise StudioError(f"'{use}' is not a candidate of run '{run.name}' ({', '.join(decision['rules'])}).")
        decision = {**decision, "use": use, "override": use if use != decision["auto"] else None}
    in_use = decision["use"] if decision else "llm"
    if in_use in ("classic", "blend"):
        shutil.copy2(run.path / CLASSIC_MODEL, folder / CLASSIC_MODEL)
    report = run.evaluation() or {}
    figures = ((report.get("candidates") or {}).get(in_use) or {}).get("val_a") or report.get("val_a") or {}
    info = {**run.info(), "classifier": in_use,
            "val_a": {k: figures.get(k) for k in ("macro_f1", "accuracy", "minority_recall")} if figures else None}
    record = {"format_version": FORMAT_VERSION, "name": run.name, "decision": decision,
              "threshold": run.threshold(), "minority_label": run.minority_label(), "labels": info["labels"],
              "text_column": run.config().data.text_column, "label_column": run.config().data.label_column,
              "info": info}
    write_json_atomic(folder / BUNDLE_RECORD, record)
    return record


def open_source(path: str | Path, runs_dir: str | Path = "runs", names_only: bool = False) -> RunDir | Bundle:
    """What a classifier is loaded from: a classifier bundle folder, a run folder, or a run's name in ``runs_dir``
    (``names_only``: names only, as the web app asks)."""
    if not names_only and is_bundle(path):
        return Bundle(path)
    return RunDir.open(path, runs_dir, inside_only=names_only)
