"""The evaluation report in words, written once for the CLI, the UI and the model card: one table of the fine-tuned
model beside the untrained model, the classic model and always answering the majority label, what the numbers mean
(``judged``: good news or bad news), the calibration and the threshold.
"""

from __future__ import annotations

import numpy as np

from studio.classifier.candidates import SET_TITLES
from studio.text import first_up


def verdicts(report: dict) -> list[str]:
    """What the numbers mean, in words (see ``judged``)."""
    return [text for _, text in judged(report)]


def judged(report: dict) -> list[tuple[bool, str]]:
    """(good news?, sentence): against always answering the majority label, against the classic model and the
    untrained model, and whether the model collapsed onto one class."""
    out: list[tuple[bool, str]] = []
    first = report.get("first")
    a = lead_figures(report).get("val_a")
    if not (a or {}).get("n"):
        return out
    if first:
        out.append(_first(report, a))
    name = set_name(report)
    majority = (report.get("majority_baseline") or {}).get("val_a")
    if majority and a["accuracy"] is not None and a["accuracy"] < majority["accuracy"]:
        out.append((False, f"{name} accuracy {a['accuracy']:.3f} is worse than always answering the majority label "
                           f"'{report['majority_baseline']['label']}' ({majority['accuracy']:.3f}): judge this model "
                           "by macro-F1 and minority recall, and train longer or on more balanced data."))
    counts = a["confusion_matrix"]["counts"]
    if counts:
        predicted = np.array(counts).sum(axis=0)[: len(report["labels"])]
        truth = np.array(counts).sum(axis=1)
        top = int(predicted.argmax())
        share, true_share = predicted[top] / max(1, predicted.sum()), truth[top] / max(1, truth.sum())
        if share >= 0.8 and true_share < 0.6 and len(report["labels"]) > 1:
            out.append((False, f"Collapse: the model predicts '{report['labels'][top]}' for {100 * share:.0f}% of "
                               f"{name} rows (the truth: {100 * true_share:.0f}%). Its minority recall and accuracy "
                               "mean little: train longer, or check the label codes."))
    out += [] if first else _against_classic(report, a)
    out += _classic_in_use(report)
    out += _unsure(report)
    base = (report.get("baseline") or {}).get("val_a")
    if base and base.get("macro_f1") is not None:
        before, after = base["macro_f1"], a["macro_f1"]
        if round(after, 3) == round(before, 3):
            text = (f"Training left {name} macro-F1 unchanged ({after:.3f}, as untrained): train longer, or check "
                    "the data.")
        else:
            text = f"Training {'raised' if after > before else 'lowered'} {name} macro-F1 from {before:.3f} " \
                   f"(untrained) to {after:.3f}."
        out.append((after > before + 0.0005, text))
    out += _budget(report.get("training") or {})
    return out


def _first(report: dict, a: dict) -> tuple[bool, str]:
    """A run's first classifier: the classic model, ready while the LLM trains, and what happens next."""
    seconds = report["first"].get("after_start_s")
    ready = "" if seconds is None else ", ready under a second after Start" if seconds < 1 else \
        f", ready {seconds:.0f} s after Start"
    return (True, f"The classic model (TF-IDF + logistic regression) is this run's first classifier{ready}: "
                  f"cross-fitted Val A macro-F1 {a['macro_f1']:.3f}, minority recall {_f(a.get('minority_recall'))}. "
                  "Predict, serve, the Playground and the bundle use it now. The fine-tuned LLM is training: once it "
                  "is evaluated, it competes with this model and their blend, and the best on held-out rows is used.")


def lead_figures(report: dict) -> dict:
    """Where a report's set figures are: the fine-tuned LLM's (the report itself), or for a run's first classifier,
    whose LLM has scored nothing yet, the classic model's in use (``chosen``)."""
    return (report.get("chosen") or {}) if report.get("first") else report


def set_title(report: dict, key: str) -> str:
    """A set's title in a report: "Val A (natural)", or where another labelled file was scored, that file's."""
    return (report.get("set_names") or {}).get(key) or SET_TITLES[key]


def set_name(report: dict, key: str = "val_a") -> str:
    """A set's name in a sentence: "Val A", or another labelled file's title ("test.csv (all rows)")."""
    return (report.get("set_names") or {}).get(key) or SET_TITLES[key].split(" (")[0]


def _budget(training: dict) -> list[tuple[bool, str]]:
    """When the time budget ended training before one pass over the training rows, the setting that would help."""
    epochs, minutes = training.get("epochs"), training.get("budget_minutes")
    if not training.get("ended_by_budget") or epochs is None or epochs >= 1 or not minutes:
        return []
    return [(False, f"The {minutes:g}-minute time budget ended training after {epochs:.1f} of one pass over the "
                    "training rows: train longer (Time budget, Model & LoRA tab) if the model should see every row.")]


def _against_classic(report: dict, a: dict) -> list[tuple[bool, str]]:
    """The classifier in use against the other candidates (or, without candidates, the LLM against the classic
    model)."""
    candidates, chosen = report.get("candidates"), report.get("chosen")
    name = set_name(report)
    judged_on = name if report.get("set_names") else "cross-fitted Val A"
    if not candidates or not chosen:
        classic = (report.get("classic_baseline") or {}).get("val_a")
        if not classic or classic.get("macro_f1") is None:
            return []
        gain = a["macro_f1"] - classic["macro_f1"]
        if gain >= 0:
            return [(True, f"The fine-tuned model adds {gain:+.3f} macro-F1 over a classic model (TF-IDF + logistic "
                           f"regression, {classic['macro_f1']:.3f}) on {name}.")]
        return [(False, f"A classic model (TF-IDF + logistic regression) is better on this data: {name} macro-F1 "
                        f"{classic['macro_f1']:.3f} against this model's {a['macro_f1']:.3f} ({gain:+.3f}). Train "
                        "longer, or use the classic model.")]
    f1 = {name: c["val_a"]["macro_f1"] for name, c in candidates.items()}
    used, chosen_f1 = chosen["name"], chosen["val_a"]["macro_f1"]
    if used == "classic":
        return [(False, f"A classic model (TF-IDF + logistic regression) is better on this data, and it is the "
                        f"classifier in use: {judged_on} macro-F1 {f1['classic']:.3f} against the fine-tuned "
                        f"LLM's {f1.get('llm', 0):.3f}. Train longer (Time budget, Model & LoRA tab) to give the LLM "
                        "a chance.")]
    others = [(name, value) for name, value in f1.items() if name != used]
    gains = " and ".join(f"{chosen_f1 - value:+.3f} over {WORDS[name]}" for name, value in others)
    return [(True, f"{first_up(WORDS[used])} is the classifier in use: it adds {gains} ({judged_on} "
                   f"macro-F1 {chosen_f1:.3f}).")]


def _classic_in_use(report: dict) -> list[tuple[bool, str]]:
    """Where the classifier in use holds the classic model: which rows it learnt from, and what the figures are of."""
    facts, chosen = report.get("classic_in_use"), report.get("chosen") or {}
    if not facts or chosen.get("name") not in ("classic", "blend"):
        return []
    if facts.get("this_file"):
        return [(True, f"The classic model scored here is the one in use: fitted on all {facts['rows']} labelled "
                       "rows of the run's own file.")]
    return [(True, f"The classic model in use learnt from all {facts['rows']} labelled rows (the training rows, Val A "
                   "and Val B), fitted once the choice was made; the figures here are the same model's fitted on the "
                   f"{facts['held_out_rows']} training rows alone, so they stay held out (and if anything low).")]


def _unsure(report: dict) -> list[tuple[bool, str]]:
    """Where "unsure" may be answered: the cut the held-out rows set, and what it answers; or why there is none."""
    target, chosen = (report.get("unsure") or {}).get("target"), report.get("chosen") or {}
    if not target or not chosen:
        return []
    cut, figures = (chosen.get("rule") or {}).get("unsure_below"), chosen.get("val_a") or {}
    if cut is None:
        accuracy = figures.get("accuracy") or 0.0
        if accuracy >= target:
            return [(True, f"Every text gets a class: the classifier in use is right {accuracy:.1%} of the time on "
                           f"the held-out rows, above the {target:.0%} 'unsure' keeps.")]
        return [(False, f"No cut on the answer's probability kept the answered texts right {target:.0%} of the time "
                        f"on the held-out rows, so every text gets a class (right {accuracy:.1%} of the time): a lower "
                        "target, or a stronger classifier (more rows, longer training), makes room for 'unsure'.")]
    said = (f"'Unsure' when the answer's probability is under {cut:.2f}: fitted on held-out rows to keep the answered "
            f"texts right {target:.0%} of the time")
    answered = figures.get("answered")
    if answered and answered.get("accuracy") is not None:
        said += (f"; on the rows scored here it answers {answered['share']:.0%} of the texts, "
                 f"{answered['accuracy']:.1%} of them right, and says 'unsure' to {answered['unsure']}")
    return [(True, said + ".")]


WORDS = {"classic": "the classic model", "llm": "the fine-tuned LLM alone", "blend": "the blend of the two"}
METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("minority_recall", "minority recall"))
SCOPE_METRICS = (("in_scope_accuracy", "in-scope accuracy"), ("recall", "out-of-scope recall"),
                 ("precision", "out-of-scope precision"))  # an intent set's own questions (metrics.scope_metrics)
LISTED_SHARES = 12  # class shares named in a sentence; past it, counted


def summary_lines(report: dict) -> list[str]:
    """The evaluation in words and one table: the candidates (the fine-tuned LLM, the classic model, their blend)
    with the one in use marked, beside the untrained model and always answering the majority label; the rules the
    held-out rows kept; what the numbers mean."""
    chosen = report.get("chosen")
    first = report.get("first")
    figures = lead_figures(report)
    sets = [(key, set_title(report, key)) for key in SET_TITLES if (figures.get(key) or {}).get("n")]
    lines = [f"Mode {report['mode']} · minority class '{report['minority_label']}'"
             + (f" · threshold {report['threshold']}" if report.get("threshold") is not None else "")
             + " · " + ", ".join(f"{figures[k]['n']} {t.split(' (')[0]} rows" for k, t in sets)]
    if first:
        lines.append("In use: the classic model, this run's first classifier (the fine-tuned LLM is still "
                     "training; the three candidates are compared once it is evaluated).")
    elif chosen:
        lines.append(f"In use: {WORDS[chosen['name']].replace(' alone', '')}"
                     + (" (your choice)" if chosen.get("override") else " (chosen)") + f". {chosen['why']}")
    lines += _table(report, sets)
    lines += _rule_lines(report)
    lines += report.get("verdicts") or []
    if report.get("invalid"):
        lines.append(f"Invalid generations (no label code): {report['invalid']}.")
    lines += [f"Note: {n}" for n in report.get("notes", [])]
    return lines


def _table(report: dict, sets: list[tuple[str, str]]) -> list[str]:
    """One row per set and metric: the candidates (Val A cross-fitted), the untrained model and the majority."""
    candidates, used = report.get("candidates") or {}, (report.get("chosen") or {}).get("name")
    columns = [(("★ " if name == used else "") + label, candidates[name]) for name, label in CANDIDATE_COLUMNS
               if name in candidates] or [("fine-tuned", report)]
    if not candidates and report.get("classic_baseline"):
        columns.append(("classic", report["classic_baseline"]))
    columns += [(name, report[key]) for key, name in (("baseline", "untrained"), ("majority_baseline", "majority"))
                if report.get(key)]
    lines = ["| set | metric | " + " | ".join(name for name, _ in columns) + " |", "|" + "---|" * (len(columns) + 2)]
    scope = (report.get("val_a") or {}).get("out_of_scope")
    for key, title in sets:
        rows = [(m, n, lambda figures, m=m: figures.get(m)) for m, n in METRICS]
        if scope:
            rows += [(m, f"{n} ('{scope['label']}')", lambda figures, m=m: (figures.get("out_of_scope") or {}).get(m))
                     for m, n in SCOPE_METRICS]
        if report.get("unsure"):  # the texts answered (not "unsure") and how often those answers are right
            rows += [(m, n, lambda figures, m=m: (figures.get("answered") or _all_answered(figures)).get(m))
                     for m, n in (("share", "share answered"), ("accuracy", "accuracy of the answered"))]
        for _, name, read in rows:
            cells = []
            for _, source in columns:
                value = read(source.get(key) or {})
                cells.append("-" if value is None else f"{value:.3f}")
            lines.append(f"| {title} | {name} | " + " | ".join(cells) + " |")
    return lines


def _all_answered(figures: dict) -> dict:
    """A source that never says "unsure" (no cut of its own, the untrained model, the majority): every text
    answered."""
    return {"share": 1.0, "accuracy": figures.get("accuracy")} if figures else {}


CANDIDATE_COLUMNS = (("llm", "fine-tuned LLM"), ("classic", "classic"), ("blend", "blend"))


def _rule_lines(report: dict) -> list[str]:
    """What the held-out rows kept of the corrections, for each candidate; the LLM's calibration."""
    lines = []
    for name, candidate in (report.get("candidates") or {}).items():
        name = WORDS[name].replace(" alone", "")
        lines.append(f"Rule of {name}, fitted on held-out rows: {candidate['rule_words']}.")
    raw = report.get("without_prior_correction")
    if raw and report["prior_correction"].get("strength"):
        shares = report["prior_correction"]["natural"]
        natural = ", ".join(f"{lb} {share:.0%}" for lb, share in shares.items()) if len(shares) <= LISTED_SHARES \
            else f"{len(shares)} classes"
        lines.append(f"The LLM's probabilities are corrected from its training mix toward the natural mix ({natural}). "
                     f"Without the correction: {set_name(report)} macro-F1 {raw['val_a']['macro_f1']:.3f}, minority "
                     f"recall {_f(raw['val_a']['minority_recall'])}"
                     + (f"; {set_name(report, 'val_b')} minority recall {_f(raw['val_b']['minority_recall'])}"
                        if (raw.get("val_b") or {}).get("n") else "") + ".")
    cal = report.get("calibration")
    if cal and cal.get("before", {}).get("ece") is not None:
        kept = (f"the temperature used from now on is {cal['temperature']:.2f}" if cal["temperature"] != 1.0 else
                "no temperature is used: on held-out halves it did not lower the error")
        if report.get("set_names"):  # another labelled file: the run's own rule, nothing fitted on these rows
            lines.append(f"Calibration of the fine-tuned LLM on {set_name(report)}, by the run's own rule (fitted on "
                         f"its Val A): expected calibration error {cal['before']['ece']:.3f} → "
                         f"{cal['after']['ece']:.3f}; temperature {cal['temperature']:.2f}.")
        else:
            lines.append(f"Calibration of the fine-tuned LLM on Val A (held-out halves): expected calibration error "
                         f"{cal['before']['ece']:.3f} → {cal['after']['ece']:.3f}; {kept}.")
    return lines


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"
