"""Use a trained run: classify every row of a file, or one text (the Playground: after and before training)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.door.result import Result, escape_markdown
from studio.door.runs import open_run
from studio.errors import StudioError
from studio.evaluate.choice import CANDIDATES, NAMES


@dataclass
class Predicted(Result):
    output: Path
    frame: pd.DataFrame

    def lines(self) -> list[str]:
        counts = self.frame["predicted_label"].value_counts().to_dict()
        return [f"Wrote {len(self.frame)} rows to {self.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items())]


def predict_file(run: str | Path, file: str | Path, output: str | Path, runs_dir: str | Path = "runs", *,
                 text_column: str | None = None, use: str | None = None, names_only: bool = False,
                 log=print) -> Predicted:
    """Classify every row of ``file`` (labels not needed) with the run's classifier in use (``use``: another
    candidate); the input columns and the predictions go to ``output``."""
    from studio.evaluate.predict import predict_file as predict  # (torch: only to run the model)
    from studio.models.trained import run_model

    folder = open_run(run, runs_dir, names_only)
    frame = predict(folder.path, file, output, runs_dir, text_column=text_column, use=use,
                    loaded=lambda: run_model(folder, log=log), log=log)  # the LLM, loaded only if the rule needs it
    return Predicted(Path(output), frame)


@dataclass
class Classified(Result):
    in_use: str  # the candidate the run uses: "llm", "classic" or "blend"
    label: str
    code: str
    confidence: float
    views: dict[str, dict[str, float]]  # each candidate's probabilities (its own rule), and "untrained"
    before_label: str
    before_confidence: float

    @property
    def probabilities(self) -> dict[str, float]:
        """The classifier in use's probabilities."""
        return self.views[self.in_use]

    def others(self) -> list[tuple[str, str, float]]:
        """(candidate, its label, its probability) for each candidate not in use."""
        return [(name, max(probs, key=probs.get), max(probs.values())) for name, probs in self.views.items()
                if name not in (self.in_use, "untrained")]

    def lines(self) -> list[str]:
        others = "".join(f"; {NAMES[n]} says {lb} ({p:.1%})" for n, lb, p in self.others())
        return [f"{self.label} ({self.code}, {self.confidence:.1%}) by {NAMES[self.in_use]}{others}; before training "
                f"the same model said {self.before_label} ({self.before_confidence:.1%})."]

    def markdown(self) -> str:
        md = escape_markdown
        others = "".join(f" {NAMES[n].capitalize()} says **{md(lb)}** ({p:.1%})." for n, lb, p in self.others())
        return (f"## {md(self.label)}  (code {md(self.code)}, {self.confidence:.1%})\nBy {NAMES[self.in_use]}, the "
                f"classifier in use.{others} Before training the same model said **{md(self.before_label)}** "
                f"({self.before_confidence:.1%}).")


def classify(run: str | Path, text: str, runs_dir: str | Path = "runs", names_only: bool = False,
             log=print) -> Classified:
    """One text through the run's classifier in use, through each candidate, and through the base model with its
    adapter off."""
    from studio.evaluate.classifier import RunClassifier  # (torch: only to run the model)
    from studio.evaluate.predict import predict_frame
    from studio.models.trained import run_model

    if not run:
        raise StudioError("Pick a run (train one first).")
    if not (text or "").strip():
        raise StudioError("Type or paste a text first.")
    folder = open_run(run, runs_dir, names_only)
    loaded = run_model(folder, log=log)
    in_use = RunClassifier.of_run(folder, loaded=loaded)
    decision = folder.classifier() or {}
    views = {}
    for name in [n for n in CANDIDATES if n in decision.get("rules", {})] or [in_use.use]:
        row = RunClassifier.of_run(folder, use=name, loaded=loaded).predict_frame([text]).iloc[0]
        views[name] = {lb: float(row[f"p_{lb}"]) for lb in in_use.labels}
    chosen = in_use.predict_frame([text]).iloc[0]
    model, tokenizer, card = loaded
    with model.disable_adapter():
        before = predict_frame(model, tokenizer, card, [text], folder.threshold(), folder.minority_label()).iloc[0]
    views["untrained"] = {lb: float(before[f"p_{lb}"]) for lb in in_use.labels}
    return Classified(in_use.use, chosen["predicted_label"], chosen["predicted_code"], float(chosen["confidence"]),
                      views, before["predicted_label"], float(before["confidence"]))
