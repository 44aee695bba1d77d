"""Runs: list them (newest first, how good and on which data first), show one's record, compare two, delete one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.config import setting_label
from studio.data.prepare import original_name
from studio.door.result import Result
from studio.errors import StudioError
from studio.runs.folder import RunDir, list_runs
from studio.runs.jobs import live_names

KEY_SETTINGS = [("model", "name"), ("lora", "r"), ("lora", "lora_alpha"), ("lora", "use_rslora"),
                ("train", "learning_rate"), ("data", "balance")]
SETS = {"val_a": "Val A", "val_b": "Val B", "classic_val_a": "Val A, classic model",
        "chosen_val_a": "Val A, classifier in use"}
METRICS = {"macro_f1": "macro-F1", "accuracy": "accuracy", "minority_recall": "minority recall", "n": "rows"}


def open_run(run: str | Path, runs_dir: str | Path = "runs", names_only: bool = False) -> RunDir:
    """A run by folder or by name in ``runs_dir``; ``names_only`` (the web app): by name only, never outside it."""
    if not run:
        raise StudioError("Pick a run.")
    return RunDir.open(run, runs_dir, inside_only=names_only)


@dataclass
class RunList(Result):
    runs_dir: str
    runs: list[dict]

    def lines(self) -> list[str]:
        if not self.runs:
            return [f"No runs in {self.runs_dir}."]
        out = []
        for r in self.runs:
            loss = "" if r["final_loss"] is None else f" loss {r['final_loss']:.4f}"
            out.append(f"{r['name']:<40} {r['state']:<11} {r['model'] or '':<36} "
                       f"step {r['step'] or 0}/{r['max_steps'] or '?'}{loss}")
        return out

    def to_dict(self) -> list[dict]:
        return self.runs

    def names(self) -> list[str]:
        return [r["name"] for r in self.runs]

    def usable(self) -> list[str]:
        """Runs that can be evaluated, tried and exported: those that ended with an adapter, and those whose first
        classifier (the classic model) answers while the LLM trains or after it failed."""
        return [r["name"] for r in self.runs if r["state"] in ("finished", "stopped")
                or (r["state"] in ("failed", "interrupted") and r["has_adapter"]) or r.get("first_classifier")]

    def table(self) -> list[dict]:
        """One row per run for the Runs tab: how good and on which data first, then how it was trained."""
        rows = []
        for r in self.runs:
            record = _record(r["path"])
            config = record.get("config", {})
            summary = record.get("eval_summary") or {}
            row = {"name": r["name"], "state": r["state"],
                   "Val A macro-F1": _round(summary.get("val_a", {}).get("macro_f1")),
                   "classic": _round(summary.get("classic_val_a", {}).get("macro_f1")),
                   "Val B minority recall": _round(summary.get("val_b", {}).get("minority_recall")),
                   "data": original_name(config.get("data", {}).get("path", "")),  # not the kept copy's hash
                   "step": f"{r['step'] or 0}/{r['max_steps'] or '?'}",
                   "final loss": None if r["final_loss"] is None else round(r["final_loss"], 4)}
            for section, key in KEY_SETTINGS:
                row[setting_label(f"{section}.{key}")] = _used(record, section, key)
            rows.append(row)
        return rows


def runs(runs_dir: str | Path = "runs") -> RunList:
    return RunList(str(runs_dir), list_runs(runs_dir, live_names=live_names()))


def record(run: str | Path, runs_dir: str | Path = "runs", names_only: bool = False) -> dict:
    """The run's record (run.json): its config and what each phase learnt."""
    return open_run(run, runs_dir, names_only).record()


def compare(a: str, b: str, runs_dir: str | Path = "runs", names_only: bool = False) -> list[dict]:
    """The settings and metrics that differ between two runs, in plain words, one row each."""
    flat_a = _flatten(record(a, runs_dir, names_only))
    flat_b = _flatten(record(b, runs_dir, names_only))
    return [{"setting": k, "a": flat_a.get(k), "b": flat_b.get(k)} for k in sorted(set(flat_a) | set(flat_b))
            if flat_a.get(k) != flat_b.get(k)]


def delete(run: str, runs_dir: str | Path = "runs", names_only: bool = False) -> str:
    from studio.models.trained import forget  # (torch is loaded only where a model was)

    folder = open_run(run, runs_dir, names_only)
    folder.delete()
    forget()
    return f"Deleted {folder.name}."


def _round(value):
    return None if value is None else round(value, 3)


def _record(path: str) -> dict:
    try:
        return RunDir(Path(path)).record()
    except StudioError:
        return {}


def _used(record: dict, section: str, key: str):
    """A setting as the run used it: an auto value with what it became ("auto → 0.001")."""
    value = record.get("config", {}).get(section, {}).get(key)
    resolved = (record.get("resolved") or {}).get(key) if section == "train" else None
    if resolved is not None and resolved != value and value in (-1, -1.0, 0, "auto"):
        return f"auto → {resolved:g}" if isinstance(resolved, float) else f"auto → {resolved}"
    return value


def _flatten(record: dict) -> dict:
    """A run's settings and its evaluation summary, one value each, under the words the page uses for them
    ("Learning rate", "Val A macro-F1")."""
    out = {}
    for section, values in record.get("config", {}).items():
        if isinstance(values, dict):
            for k, v in values.items():
                if k not in ("sha256", "counts"):
                    v = _used(record, section, k)
                    out[setting_label(f"{section}.{k}")] = json.dumps(v) if isinstance(v, (dict, list)) else v
        elif section != "name":
            out[section] = values
    for name, metrics in (record.get("eval_summary") or {}).items():
        for k, v in metrics.items():
            out[f"{SETS.get(name, name)} {METRICS.get(k, k)}"] = _round(v) if isinstance(v, float) else v
    return out
