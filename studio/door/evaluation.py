"""Evaluate a run on its Val A and Val B (or on another labelled file): the three candidates (the fine-tuned LLM, the
classic model, their blend) with the one in use, beside the untrained model and the majority label; pick another
candidate; save the decision threshold; sanity-check the untrained model before training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.classifier.candidates import CANDIDATES, NAMES, SET_TITLES
from studio.config import RunConfig
from studio.door.result import Result, as_markdown
from studio.door.runs import open_run
from studio.errors import StudioError
from studio.evaluate.verdicts import judged, set_title, summary_lines
from studio.runs.folder import RunDir

DECISION_COLUMNS = ["label", "predicted", "confidence", "p_label", "text", "set", "row"]
GOOD, BAD = "✓", "⚠"  # glyphs every font has (no emoji font needed)
TEXT_PREVIEW = 160
PRINTED_MATRIX_CLASSES = 12  # past this many classes ``eval`` prints the confused pairs, not the matrix
PRINTED_PAIRS = 15


@dataclass
class Evaluated(Result):
    evaluation: object  # studio.evaluate.evaluation.Evaluation
    report: dict
    run: RunDir
    threshold_in_view: float | None = None  # a page's: the saved threshold, or the one its slider was moved to

    def __post_init__(self):
        if self.threshold_in_view is None:
            self.threshold_in_view = self.evaluation.threshold

    @property
    def binary(self) -> bool:
        return len(self.evaluation.labels) == 2 and self.evaluation.mode == "score"

    @property
    def threshold(self) -> float | None:
        return self.evaluation.threshold

    @property
    def rule_threshold(self) -> float | None:
        """The minority threshold the classifier in use's rule was fitted with (None: the most probable class)."""
        decision = self.evaluation.decision
        return decision.rules[decision.use].threshold if decision and self.binary else None

    @property
    def candidates(self) -> list[str]:
        """The candidates of this evaluation, the simplest first (none in generate mode)."""
        decision = self.evaluation.decision
        return [n for n in CANDIDATES if decision and n in decision.rules]

    @property
    def in_use(self) -> str | None:
        decision = self.evaluation.decision
        return decision.use if decision else None

    @property
    def chosen(self) -> str | None:
        decision = self.evaluation.decision
        return decision.auto if decision else None

    def at(self, threshold: float | None) -> dict:
        """The report with the minority class decided at ``threshold`` (two-class runs; None: each rule's own)."""
        return self.evaluation.report(threshold if self.binary else None)

    def set_title(self, key: str) -> str:
        """A set's title: "Val A (natural)", or a scored test file's own ("test.csv (test set)")."""
        return set_title(self.report, key)

    @property
    def test_file(self) -> bool:
        """Whether a labelled test file was scored (all its rows, once; no Val B)."""
        return bool(self.report.get("set_names"))

    def figures(self, report: dict, on: str) -> dict:
        """The metrics of the classifier in use on a set (the fine-tuned LLM's without candidates)."""
        return (report.get("chosen") or report)[on]

    @staticmethod
    def confused_pairs(metrics: dict, top: int = 20) -> list[dict]:
        """A set's most frequent mistakes, most first: true, predicted, rows, share of the true class's rows."""
        from studio.evaluate.metrics import confused_pairs  # (scikit-learn: beside its one use)

        return confused_pairs(metrics, top)

    @staticmethod
    def worst_classes(metrics: dict, n: int) -> list[str]:
        """The ``n`` classes with the lowest F1 on a set."""
        from studio.evaluate.metrics import worst_classes  # (scikit-learn: beside its one use)

        return worst_classes(metrics, n)

    def pr_curve(self, threshold: float | None) -> dict | None:
        """The precision-recall curve of the classifier in use on Val A (two-class runs)."""
        from studio.evaluate.metrics import pr_curve  # (numpy and scikit-learn: beside its one use)

        ev = self.evaluation
        if ev.decision is None or not self.binary:
            return (self.report.get("pr_curve") or {}).get("val_a")
        probs = ev.decision.outcome(ev.decision.use, "val_a").probs
        return pr_curve(list(ev.sets["val_a"].frame["label"]), probs, ev.labels, ev.minority)

    def lines(self) -> list[str]:
        """What ``eval`` prints: the summary, each set's confusion matrix and per-class figures (of the classifier
        in use), the disagreements."""
        r = self.report
        lines = summary_lines(r)
        used = f", {NAMES[r['chosen']['name']]} (in use)" if r.get("chosen") else ""
        for key, title in SET_TITLES.items():
            if key in r and r[key]["confusion_matrix"]["counts"]:
                lines += _confusion_lines(self.figures(r, key) if key in ("val_a", "val_b") else r[key],
                                          title + (used if key in ("val_a", "val_b") else ""))
        if r["disagreements"]:
            lines.append(f"\nMost confident disagreements ({r['disagreements_total']} in all; "
                         "disagreements.csv in the run folder):")
            for d in r["disagreements"][:10]:
                text = d["text"] if len(d["text"]) <= 70 else d["text"][:67] + "..."
                lines.append(f"  {d['confidence']:.2f}  given {d['label']!r}, model says {d['predicted']!r}: {text!r}")
        return lines

    def markdown(self, report: dict | None = None) -> str:
        """The summary for a page: what the numbers mean stands out, marked as good news or bad news by what it
        means, whether or not a number went up."""
        report = report or self.report
        good = {text: ok for ok, text in judged(report)}
        lines = [f"{GOOD if good[line] else BAD} **{line}**" if line in good else line
                 for line in summary_lines(report)]
        if report.get("conflicts"):
            lines.append(f"{len(report['conflicts'])} texts appear in the data with different labels (see Data).")
        return as_markdown(lines)

    def disagreements(self, threshold: float | None) -> tuple[pd.DataFrame, Path]:
        """The disagreements at ``threshold``, decision columns first and texts shortened for a table, and the whole
        list as a CSV in the run folder."""
        flagged = self.evaluation.disagreements(threshold if self.binary else None)
        path = self.run.write_table("disagreements-view.csv", flagged)
        view = flagged.reindex(columns=DECISION_COLUMNS).head(200)
        view["text"] = [t if len(t) <= TEXT_PREVIEW else t[:TEXT_PREVIEW - 1] + "…" for t in view["text"].astype(str)]
        return view, path


def _confusion_lines(metrics: dict, title: str) -> list[str]:
    cm = metrics["confusion_matrix"]
    if len(cm["labels"]) > PRINTED_MATRIX_CLASSES:
        return _many_class_lines(metrics, title)
    lines = [f"\nConfusion matrix, {title} (rows: true, columns: predicted)"]
    width = max(12, *(len(x) + 2 for x in cm["predicted"]))
    lines.append(" " * width + "".join(f"{x:>{width}}" for x in cm["predicted"]))
    for label, row in zip(cm["labels"], cm["counts"]):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    for label, m in metrics["per_class"].items():
        lines.append(f"  {label}: precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  "
                     f"support {m['support']}")
    return lines


def _many_class_lines(metrics: dict, title: str) -> list[str]:
    """Many classes: the most confused pairs and the worst classes (the whole matrix is in evaluation.json)."""
    from studio.evaluate.metrics import confused_pairs, worst_classes  # (scikit-learn: beside its one use)

    classes = len(metrics["confusion_matrix"]["labels"])
    lines = [f"\nMost confused pairs, {title} ({classes} classes; the whole matrix is in evaluation.json):"]
    lines += [f"  {p['rows']:>4} × {p['true']} → {p['predicted']} ({p['share']:.0%} of {p['true']})"
              for p in confused_pairs(metrics, PRINTED_PAIRS)] or ["  none"]
    lines.append(f"Lowest F1, {title}:")
    per_class = metrics["per_class"]
    worst = sorted(worst_classes(metrics, PRINTED_PAIRS), key=lambda lb: per_class[lb]["f1"])
    lines += [f"  {lb}: precision {per_class[lb]['precision']:.3f}  recall {per_class[lb]['recall']:.3f}  f1 "
              f"{per_class[lb]['f1']:.3f}  support {per_class[lb]['support']}" for lb in worst]
    return lines


def evaluate(run: str | Path, runs_dir: str | Path = "runs", *, data: str | None = None, mode: str = "score",
             untrained: bool = True, include_train: bool = False, use: str | None = None, names_only: bool = False,
             log=print, progress=None) -> Evaluated:
    """Evaluate a run (the model kept in memory when it is the one just trained or used); on its own sets the
    report, the disagreements, the choice among the candidates and the classic model are kept with the run.
    ``use``: "llm", "classic" or "blend" to use that candidate from now on, "auto" for the one the figures choose;
    default: as before."""
    from studio.evaluate.saved_run import evaluate_run  # (torch: only to evaluate)
    from studio.models.trained import run_model

    if use not in (None, "auto", *CANDIDATES):
        raise StudioError(f"--use takes llm, classic, blend or auto (got '{use}').")
    folder = open_run(run, runs_dir, names_only)
    if folder.first_only():
        if data is not None or mode != "score" or use not in (None, "auto", "classic"):
            raise StudioError(f"Run '{folder.name}' has its first classifier only (the classic model) while the "
                              "fine-tuned LLM trains: scoring another file, generate mode and the other candidates "
                              "come once the LLM is trained and evaluated.")
        from studio.evaluate.first import evaluate_first  # (transformers: the run's tokenizer)

        evaluation, report = evaluate_first(folder, log=log)
        return Evaluated(evaluation, report, folder)
    if progress:
        progress("Loading the model", 0.0)
    evaluation, report = evaluate_run(folder.path, runs_dir, data=data, mode=mode, untrained=untrained,
                                      include_train=include_train, use=... if use is None else use,
                                      loaded=run_model(folder, log=log), log=log, progress=progress)
    return Evaluated(evaluation, report, folder)


def use_classifier(evaluated: Evaluated, name: str) -> Evaluated:
    """Use another candidate from now on ("auto": the one the figures choose), without scoring again; kept with the
    run (predict, the Playground, serve and the bundle follow it)."""
    decision = evaluated.evaluation.decision
    if decision is None:
        raise StudioError("Evaluate the run in score mode first: generate mode has no candidates to choose from.")
    if name not in ("auto", *decision.rules):
        raise StudioError(f"Pick one of: auto, {', '.join(decision.rules)}.")
    decision.use = decision.auto if name == "auto" else name
    decision.val_b["chosen"] = decision.val_b[decision.use]
    evaluated.run.set_classifier(evaluated.evaluation.decision_record())
    evaluated.report = evaluated.evaluation.report()
    evaluated.run.write_evaluation(evaluated.report)
    return evaluated


def save_threshold(run: str | Path, threshold: float | None, runs_dir: str | Path = "runs",
                   names_only: bool = False) -> str:
    """The minority-class threshold (two-class runs) that predict and the exports use; None clears it."""
    folder = open_run(run, runs_dir, names_only)
    folder.set_threshold(threshold)
    return f"Threshold {threshold:.2f} saved with {folder.name}." if threshold is not None else \
        f"Threshold cleared for {folder.name}."


def sanity_check(config: RunConfig, log=print) -> pd.DataFrame:
    """The untrained model on a few Val A rows: its constrained choice and what it generates."""
    from studio.evaluate.sanity import sanity_check as check  # (torch: only to run the model)

    if not config.data.path:
        raise StudioError("No data file is in use: upload a file, or click 'Use the sample data'.")
    return check(config, log=log)
