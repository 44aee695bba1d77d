"""Use a trained classifier from Python: ``from studio import Classifier``.

    clf = Classifier.load("runs/my-run")            # a run folder, a run name (with runs_dir=), or a bundle folder
    clf.predict(["Can I post my shop link?"])      # [{"label": "Rules Question", "probabilities": {...}}]
    clf.predict_file("new_posts.csv", "labelled.csv")
    clf.labels, clf.info

It is the classifier in use of the run (the candidate its evaluation chose among the fine-tuned LLM, the classic
model and their blend, or the one picked), with its correction to the natural class mix, its calibration and the
run's threshold. Importing it loads neither Gradio nor the training stack; torch loads when the LLM does (and only if
the classifier in use needs it: a classic model answers without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.classifier.bundle import open_source
from studio.classifier.candidates import EMPTY_NOTE
from studio.classifier.engine import RunClassifier
from studio.errors import StudioError


@dataclass
class Classifier:
    source: object  # the run folder or the bundle it was loaded from
    engine: RunClassifier

    @classmethod
    def load(cls, path: str | Path, runs_dir: str | Path = "runs", use: str | None = None,
             log=lambda message: None) -> "Classifier":
        """A run folder, a run's name in ``runs_dir``, or a classifier bundle folder; ``use``: another candidate
        than the one in use ("llm", "classic", "blend")."""
        from studio.models.trained import run_model  # (torch: only when the LLM is loaded, at the first text)

        source = open_source(path, runs_dir)
        return cls(source, RunClassifier.of_run(source, use, loaded=lambda: run_model(source, log=log), log=log))

    @property
    def labels(self) -> list[str]:
        return list(self.engine.labels)

    @property
    def info(self) -> dict:
        """The model it was trained from, the candidate in use, its Val A figures, the labels, the threshold."""
        return {**self.source.info(), "classifier": self.engine.use, "labels": self.labels}

    def predict(self, texts: list[str] | str) -> list[dict]:
        """One dict per text, in order: ``{"label": ..., "probabilities": {label: p, ...}}``; an empty text gets
        ``{"label": None, "probabilities": None, "note": "empty text: not classified"}``."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not all(t is None or isinstance(t, str) for t in texts):
            raise StudioError("predict takes a list of texts (strings).")
        frame = self.engine.predict_frame(list(texts))
        probs = frame[[f"p_{lb}" for lb in self.labels]].to_numpy(dtype=float)
        out = []
        for label, row in zip(frame["predicted_label"], probs):
            if not isinstance(label, str):  # (pandas keeps a missing label as NaN)
                out.append({"label": None, "probabilities": None, "note": EMPTY_NOTE})
            else:
                out.append({"label": label, "probabilities": dict(zip(self.labels, row.tolist()))})
        return out

    def predict_file(self, src: str | Path, dst: str | Path, *, text_column: str | None = None,
                     restart: bool = False, progress=None):
        """Classify every row of ``src`` into ``dst`` (.csv, .tsv, .jsonl or .parquet), in chunks, continuing a
        partial ``dst`` (``restart``: start over); returns what was written (rows, labels, seconds)."""
        from studio.evaluate.predict import predict_file  # (torch: only when the LLM is used)

        return predict_file(self.source.path, src, dst, text_column=text_column, use=self.engine.use,
                            loaded=self.engine.load_llm, restart=restart, progress=progress)
