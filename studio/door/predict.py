"""Use a trained run: classify every row of a file, or one text (the Playground: after and before training)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from studio.classifier.bundle import open_source
from studio.classifier.candidates import CANDIDATES, NAMES, label_of
from studio.data.stream import open_table
from studio.door.result import Result, escape_markdown
from studio.door.runs import open_run
from studio.errors import StudioError
from studio.machine import leave_process_group, ranks
from studio.text import first_up


@dataclass
class Predicted(Result):
    written: object  # studio.evaluate.predict.PredictionRun

    @property
    def output(self) -> Path:
        return self.written.output

    @property
    def preview(self) -> pd.DataFrame:
        return self.written.preview

    def lines(self) -> list[str]:
        w = self.written
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(w.counts.items(), key=lambda kv: -kv[1]))
        resumed = f" (continued after the {w.resumed_from:,} rows a partial output held)" if w.resumed_from else ""
        return [f"Wrote {w.rows:,} rows to {w.output}{resumed}. Classified here: {w.classified:,} rows, "
                f"{w.rows_per_second:,.1f} rows/s ({counts or 'none'})."] + ([test_words(w.test)] if w.test else [])


def predict_file(run: str | Path, file: str | Path, output: str | Path, runs_dir: str | Path = "runs", *,
                 text_column: str | None = None, use: str | None = None, restart: bool = False,
                 names_only: bool = False, chunk_rows: int | None = None, log=print, progress=None) -> Predicted:
    """Classify every row of ``file`` (labels not needed) with the classifier in use of a run or a bundle (``use``:
    another candidate); the input columns and the predictions are written to ``output`` as they are made, and a
    partial output of the same input is continued (``restart``: start over)."""
    from studio.evaluate.predict import predict_file as predict  # (torch: only to run the model)
    from studio.models.trained import run_model

    source = open_source(run, runs_dir, names_only)
    if chunk_rows is not None and chunk_rows < 1:
        raise StudioError("--chunk-rows must be at least 1.")
    written = predict(source.path, file, output, runs_dir, text_column=text_column, use=use, restart=restart,
                      loaded=lambda: run_model(source, log=log), log=log, progress=progress,  # the LLM if needed
                      **({"chunk_rows": chunk_rows} if chunk_rows else {}))
    if ranks().distributed:  # one of several processes (accelerate launch): leave the group cleanly
        leave_process_group()
    return Predicted(written)


def test_words(test: dict) -> str:
    """A labelled file's figures as a test set, in words: from the predictions just made (each text scored once)."""
    minority = (f", minority recall ({test['minority_label']}) {test['minority_recall']:.3f}"
                if test.get("minority_recall") is not None else "")
    left = (f" ({test['unknown_labels']:,} rows with labels the run does not know are left out)"
            if test["unknown_labels"] else "")
    return (f"The file is labelled (column '{test['column']}'), so it is a test set: on its {test['n']:,} rows the "
            f"classifier in use scores accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}{minority}"
            f"{left}. Nothing was fitted on them; `python -m studio eval RUN --data FILE` (Evaluate: 'Score a "
            "labelled test file') shows its confusion matrix beside every candidate.")


@dataclass
class PredictionJob(Result):
    """A batch prediction running in the background of the app (the page polls it, and a reloaded page finds it
    again): its progress in words and rows, then the file, or the error."""

    run: str
    source: str  # the input file's name, as the user knows it
    output: Path
    state: str = "running"  # running | finished | failed
    progress: str = "Starting: loading the classifier…"
    fraction: float = 0.0
    error: str | None = None
    result: Predicted | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    @property
    def running(self) -> bool:
        return self.state == "running"

    def lines(self) -> list[str]:
        head = f"Batch predictions of {self.source} with {self.run}"
        if self.state == "failed":
            return [f"{head} failed: {self.error} A rerun continues from the rows already written."]
        if self.state == "finished":
            return [f"{head}: done in {self.seconds:.0f} s.", *self.result.lines()]
        return [f"{head}: {self.progress}."]


_prediction: PredictionJob | None = None
_prediction_lock = threading.Lock()


def start_prediction(run: str, file: str | Path, output: str | Path, runs_dir: str | Path = "runs", *,
                     names_only: bool = False, log=print) -> PredictionJob:
    """Classify ``file`` in a background thread of this process (one at a time); ``current_prediction`` follows
    it. Bad input (no such run, an unreadable file) fails at once, in the caller's thread."""
    global _prediction
    source = open_source(run, runs_dir, names_only)
    open_table(file)  # a file that cannot be read is refused now, in the caller's thread
    with _prediction_lock:
        if _prediction is not None and _prediction.running:
            raise StudioError(f"A batch prediction is running ({_prediction.source}): wait for it to finish.")
        job = PredictionJob(source.name, Path(str(file)).name, Path(output))
        _prediction = job

    def work() -> None:
        def progress(message: str, fraction: float) -> None:
            job.progress, job.fraction = message, fraction

        try:
            job.result = predict_file(source.path, file, output, runs_dir, log=log, progress=progress)
            job.seconds, job.state = time.monotonic() - job.started, "finished"
        except Exception as exc:  # the page shows it; a partial output stays for a rerun to continue
            job.error = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
            job.state = "failed"

    threading.Thread(target=work, name="batch-predictions", daemon=True).start()
    return job


def current_prediction() -> PredictionJob | None:
    """The batch prediction this process runs or ran last (None before the first)."""
    return _prediction


_playground_lock = threading.Lock()
FIRST_NOTE = ("the fine-tuned LLM is still training: it and the blend answer here once it is trained and "
              "evaluated")


@dataclass
class Classified(Result):
    in_use: str  # the candidate the run uses: "llm", "classic" or "blend"
    label: str
    code: str
    confidence: float
    views: dict[str, dict[str, float]]  # each candidate's probabilities (its own rule), and "untrained"
    before_label: str | None  # None: a first classifier's run, whose LLM is still training
    before_confidence: float | None
    unsure_below: float | None = None  # the rule's cut where the answer is "unsure"
    answers: dict[str, str] = field(default_factory=dict)  # each candidate's own answer (its rule's decision)

    @property
    def probabilities(self) -> dict[str, float]:
        """The classifier in use's probabilities."""
        return self.views[self.in_use]

    def others(self) -> list[tuple[str, str, float]]:
        """(candidate, its label, its probability) for each candidate not in use."""
        return [(name, self.answers.get(name) or max(probs, key=probs.get), max(probs.values()))
                for name, probs in self.views.items() if name not in (self.in_use, "untrained")]

    def _why_unsure(self) -> str:
        likely = max(self.probabilities, key=self.probabilities.get)
        return (f"the most likely class, {likely} ({self.confidence:.1%}), is under the {self.unsure_below:.0%} cut "
                "fitted on held-out rows")

    def _answer(self) -> str:
        """The label with its code and probability, or for "unsure" why."""
        return f"{self.label} ({self.code}, {self.confidence:.1%})" if self.code else \
            f"{self.label}: {self._why_unsure()}"

    def lines(self) -> list[str]:
        others = "".join(f"; {NAMES[n]} says {lb} ({p:.1%})" for n, lb, p in self.others())
        before = (f"; before training the same model said {self.before_label} ({self.before_confidence:.1%})"
                  if self.before_label is not None else f"; {FIRST_NOTE}")
        return [f"{self._answer()} by {NAMES[self.in_use]}{others}{before}."]

    def markdown(self) -> str:
        md = escape_markdown
        others = "".join(f" {first_up(NAMES[n])} says **{md(lb)}** ({p:.1%})." for n, lb, p in self.others())
        head = (f"## {md(self.label)}  (code {md(self.code)}, {self.confidence:.1%})" if self.code else
                f"## {md(self.label)}\n{md(first_up(self._why_unsure()))}.")
        before = (f" Before training the same model said **{md(self.before_label)}** ({self.before_confidence:.1%})."
                  if self.before_label is not None else f" {first_up(FIRST_NOTE)}.")
        return f"{head}\nBy {NAMES[self.in_use]}, the classifier in use.{others}{before}"


def classify(run: str | Path, text: str, runs_dir: str | Path = "runs", names_only: bool = False,
             log=print) -> Classified:
    """One text through the run's classifier in use and each candidate (one pass of each model: every candidate
    is derived from the same scores), and through the base model with its adapter off."""
    from studio.classifier.engine import RunClassifier  # (torch: only to run the model)
    from studio.models.trained import kept_beside

    if not run:
        raise StudioError("Pick a run (train one first).")
    if not (text or "").strip():
        raise StudioError("Type or paste a text first.")
    folder = open_run(run, runs_dir, names_only)
    if folder.first_only():  # the classic model answers while the LLM trains: no model to load
        classifier = RunClassifier.of_run(folder)
        outcome = classifier.classify([text.strip()])
        label = label_of(classifier.labels, int(outcome.decided[0]))
        probs = dict(zip(classifier.labels, outcome.probs[0].tolist()))
        return Classified("classic", label, classifier.codes.get(label, ""), round(probs.get(label, max(
            probs.values())), 4), {"classic": probs}, None, None, classifier.rule.unsure_below, {"classic": label})
    with _playground_lock:  # one text at a time through the kept classifier (its adapter is switched off for one view)
        # kept while the run is unchanged (a new evaluation, threshold or adapter makes another): its scorers keep
        # the rubric's cache, which built again for every text cost most of a question's seconds
        classifier = kept_beside(folder, "playground", folder.classifier_stamp(),
                                 lambda loaded: RunClassifier.of_run(folder, loaded=loaded), log=log)
        outcomes = classifier.every_candidate([text.strip()])
        before = classifier.untrained_frame([text], folder.minority_label(), folder.threshold()).iloc[0]
    views = {name: dict(zip(classifier.labels, outcomes[name].probs[0].tolist()))
             for name in CANDIDATES if name in outcomes}
    label = label_of(classifier.labels, int(outcomes[classifier.use].decided[0]))
    views["untrained"] = {lb: float(before[f"p_{lb}"]) for lb in classifier.labels}
    in_use = views[classifier.use]
    return Classified(classifier.use, label, classifier.codes.get(label, ""),
                      round(in_use.get(label, max(in_use.values())), 4), views, before["predicted_label"],
                      float(before["confidence"]), classifier.rule.unsure_below,
                      {name: label_of(classifier.labels, int(o.decided[0])) for name, o in outcomes.items()})
