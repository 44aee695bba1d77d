"""Use a trained run: classify every row of a file, or one text (the Playground: after and before training)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.door.result import Result, escape_markdown
from studio.door.runs import open_run
from studio.errors import StudioError


@dataclass
class Predicted(Result):
    output: Path
    frame: pd.DataFrame

    def lines(self) -> list[str]:
        counts = self.frame["predicted_label"].value_counts().to_dict()
        return [f"Wrote {len(self.frame)} rows to {self.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items())]


def predict_file(run: str | Path, file: str | Path, output: str | Path, runs_dir: str | Path = "runs", *,
                 text_column: str | None = None, names_only: bool = False, log=print) -> Predicted:
    """Classify every row of ``file`` (labels not needed); the input columns and the predictions go to ``output``."""
    from studio.evaluate.predict import predict_file as predict  # (torch: only to run the model)
    from studio.models.trained import run_model

    folder = open_run(run, runs_dir, names_only)
    frame = predict(folder.path, file, output, runs_dir, text_column=text_column, loaded=run_model(folder, log=log),
                    log=log)
    return Predicted(Path(output), frame)


@dataclass
class Classified(Result):
    label: str
    code: str
    confidence: float
    before_label: str
    before_confidence: float
    probabilities: dict[str, float]  # after training
    probabilities_before: dict[str, float]  # the same model with its adapter off

    def lines(self) -> list[str]:
        return [f"{self.label} ({self.code}, {self.confidence:.1%}); before training the same model said "
                f"{self.before_label} ({self.before_confidence:.1%})."]

    def markdown(self) -> str:
        md = escape_markdown
        return (f"## {md(self.label)}  (code {md(self.code)}, {self.confidence:.1%})\nBefore training the same model "
                f"said **{md(self.before_label)}** ({self.before_confidence:.1%}).")


def classify(run: str | Path, text: str, runs_dir: str | Path = "runs", names_only: bool = False,
             log=print) -> Classified:
    """One text through the trained model, and through the same model with its adapter off."""
    from studio.evaluate.predict import predict_frame  # (torch: only to run the model)
    from studio.models.trained import run_model

    if not run:
        raise StudioError("Pick a run (train one first).")
    if not (text or "").strip():
        raise StudioError("Type or paste a text first.")
    folder = open_run(run, runs_dir, names_only)
    model, tokenizer, card = run_model(folder, log=log)
    threshold, minority = folder.threshold(), folder.minority_label()
    after = predict_frame(model, tokenizer, card, [text], threshold, minority).iloc[0]
    with model.disable_adapter():
        before = predict_frame(model, tokenizer, card, [text], threshold, minority).iloc[0]
    labels = list(card["label_codes"])
    return Classified(after["predicted_label"], after["predicted_code"], float(after["confidence"]),
                      before["predicted_label"], float(before["confidence"]),
                      {lb: float(after[f"p_{lb}"]) for lb in labels}, {lb: float(before[f"p_{lb}"]) for lb in labels})
