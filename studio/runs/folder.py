"""A run's room on disk: ``runs/<name>/`` holds the run record (run.json: the config and what each phase learnt),
metrics.jsonl, status.json, train.log, checkpoints/, the final adapter/ with its adapter card (studio.json: label
codes, rubric, prompt format, class priors, temperature, threshold), eval.json, disagreements and memory.json. Every
read and write of run.json and studio.json goes through ``RunDir``; nothing a run wrote is deleted when it fails or
stops, and every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.config import RunConfig
from studio.errors import StudioError
from studio.files import write_json_atomic, written_atomically
from studio.runs.sheets import write_csv
from studio.runs.stream import MetricsStream

STATES = ("running", "finished", "stopped", "failed")
RUN_RECORD = "run.json"  # the config and what each phase of the run learnt
ADAPTER_CARD = "studio.json"  # beside the adapter weights: what turns them into a classifier (codes, rubric, ...)
CLASSIC_MODEL = "classic.skops"  # the classic model in use: once the choice is made, fitted on every labelled row
CLASSIC_HELD_OUT = "classic_train.skops"  # the same fitted on the training rows alone: the one the figures are of
CHECKPOINT_DONE = "studio_checkpoint_complete"  # written after the trainer finished saving a checkpoint
LAUNCH = ".launch"  # a run started by the web app in child processes: its config and its data as Start read them
MAX_NAME = 80


def sanitize_name(name: str) -> str:
    """A safe folder name: letters, digits, '.', '_' and '-' only; no path separators, no leading dots."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "-", name.strip())
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip(".-_")[:MAX_NAME]
    if not cleaned:
        raise StudioError(f"Run name {name!r} has no usable characters; use letters, digits, '-', '_' or '.'.")
    return cleaned


def default_run_name(model_name: str, data_path: str = "") -> str:
    """data file + model + time, so two datasets' runs never look alike ('posts-SmolLM2-135M-Instruct-20261125-…').
    An upload kept beside the runs loses its content-hash prefix."""
    base = model_name.rstrip("/").split("/")[-1].replace("embedded:", "")
    stem = Path(data_path).stem if data_path else ""
    stem = re.sub(r"^[0-9a-f]{12}-", "", stem)[:32]
    return "-".join(p for p in (stem, base, time.strftime("%Y%m%d-%H%M%S")) if p)


def minority_label(record: dict) -> str | None:
    """The run's smallest class (in its input data), from its run record; None when no counts were recorded."""
    data = record.get("config", {}).get("data", {})
    counts = data.get("counts", {}).get("input", {})
    labels = list(data.get("label_codes") or counts)
    return min(labels, key=lambda lb: counts.get(lb, 0)) if counts and labels else None


def write_adapter_card(folder: Path, card: dict) -> None:
    """The adapter card beside adapter weights being written (a run's adapter.tmp, an export's folder)."""
    write_json_atomic(Path(folder) / ADAPTER_CARD, card)


def read_adapter_card(folder: Path) -> dict | None:
    """The adapter card of an adapter folder (a run's, an export's), None when it has none."""
    path = Path(folder) / ADAPTER_CARD
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def is_run_folder(path: Path) -> bool:
    return (Path(path) / RUN_RECORD).exists()


@dataclass
class RunDir:
    path: Path
    readonly: bool = False  # ranks other than 0 of a multi-GPU run read the folder and write nothing

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_json(self) -> Path:
        return self.path / RUN_RECORD

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    # ---- creation and lookup -------------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> "RunDir":
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        base = sanitize_name(name)
        candidate, n = base, 2
        while (runs_dir / candidate).exists():
            candidate, n = f"{base}-{n}", n + 1
        path = runs_dir / candidate
        path.mkdir()
        return cls(path)

    @classmethod
    def open(cls, path_or_name: str | Path, runs_dir: str | Path = "runs", inside_only: bool = False) -> "RunDir":
        """A run by folder path (CLI), or by name inside ``runs_dir`` (names cannot escape it). ``inside_only``
        (the web UI): names only, so a request can never reach a folder outside ``runs_dir``."""
        path = Path(path_or_name)
        if inside_only or not is_run_folder(path):
            path = Path(runs_dir) / sanitize_name(str(path_or_name))
        if not is_run_folder(path):
            raise StudioError(f"No run at {path_or_name}: a run folder holds run.json. "
                              f"Runs in {runs_dir}: {', '.join(r['name'] for r in list_runs(runs_dir)) or 'none'}.")
        return cls(path)

    # ---- the run record (run.json) ---------------------------------------------------------------------
    def has_record(self) -> bool:
        return is_run_folder(self.path)

    def record(self) -> dict:
        """The run record: the config and what each phase of the run (and its evaluation) learnt."""
        try:
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StudioError(f"{self.run_json} cannot be read ({exc}).") from None

    def update_record(self, config: RunConfig | None = None, **fields) -> None:
        """Merge ``fields`` (and the config, when given) into the run record, written atomically."""
        if self.readonly:
            return
        data = self.record() if self.run_json.exists() else {}
        data.update(fields)
        if config is not None:
            data["config"] = config.to_dict()
        write_json_atomic(self.run_json, data)

    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.record()["config"])

    def copy_record_to(self, folder: Path, keys: tuple[str, ...]) -> None:
        """The record's ``keys`` as a run record of their own in ``folder`` (an export carries its settings)."""
        record = self.record()
        write_json_atomic(Path(folder) / RUN_RECORD, {k: record[k] for k in keys if k in record})

    def minority_label(self) -> str | None:
        return minority_label(self.record())

    def threshold(self) -> float | None:
        return self.record().get("threshold")

    def set_threshold(self, threshold: float | None) -> None:
        """The minority class's decision threshold (two-class runs) set by hand: kept in the record (for the
        classifier in use too) and on the adapter card."""
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise StudioError(f"The threshold must be between 0 and 1 (got {threshold}).")
        labels = list(self.config().data.label_codes)
        if threshold is not None and len(labels) != 2:
            raise StudioError("A decision threshold applies to two-class tasks only; this run has "
                              f"{len(labels)} classes.")
        classifier = self.classifier()
        if classifier is not None:
            classifier["threshold"] = threshold
        self.update_record(threshold=threshold, **({"classifier": classifier} if classifier else {}))
        if self.has_adapter_card():
            self.update_adapter_card(threshold=threshold)

    # ---- the classifier in use (the best of the LLM, the classic model and their blend) ----------------------
    def classifier(self) -> dict | None:
        """The evaluation's decision (studio.classifier.choice.Decision.to_record): the candidates' rules, the one in
        use and why; None before the run's first evaluation."""
        return self.record().get("classifier")

    def set_classifier(self, decision: dict) -> None:
        self.update_record(classifier=decision)

    def save_classic(self, in_use, held_out=None) -> None:
        """The classic model in use (``in_use``) and the one fitted on the training rows alone (``held_out``, whose
        Val A / Val B figures the evaluation reports), in scikit-learn's own safe format (skops: no pickle), each
        written to a temporary name and renamed into place."""
        import skops.io  # (scikit-learn's serializer: only where a classic model is saved or loaded)

        if self.readonly:
            return
        for model, name in ((held_out, CLASSIC_HELD_OUT), (in_use, CLASSIC_MODEL)):
            if model is not None:
                with written_atomically(self.path / name) as tmp:
                    skops.io.dump(model, tmp)

    def classifier_stamp(self) -> tuple[int, ...]:
        """When the files the run's classifier is made of last changed (the record with its decision and threshold,
        the adapter card, the adapter's weights, the classic model): a classifier kept in memory is stale once this
        changes."""
        files = (self.run_json, self.adapter / ADAPTER_CARD, self.adapter / "adapter_model.safetensors",
                 self.path / CLASSIC_MODEL)
        return tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in files)

    def has_classic_in_use(self) -> bool:
        """Whether the classic model in use and the one of the figures are both kept (runs evaluated before they
        were kept apart have the latter only)."""
        return (self.path / CLASSIC_MODEL).exists() and (self.path / CLASSIC_HELD_OUT).exists()

    def load_classic(self, held_out: bool = False):
        """The run's classic model in use (``held_out``: the one fitted on the training rows alone, which the run's
        own figures are of; a run evaluated before the two were kept apart has that one only), None when it has
        none; loaded without running code from the run folder."""
        path = self.path / CLASSIC_HELD_OUT
        return load_classic_file(path if held_out and path.exists() else self.path / CLASSIC_MODEL)

    def info(self) -> dict:
        """What a classifier made from this run says about itself: its model, the candidate in use and its figures."""
        record = self.record()
        summary = record.get("eval_summary") or {}
        return {"name": self.name, "model": record.get("config", {}).get("model", {}).get("name"),
                "labels": list(self.adapter_card()["label_codes"]) if self.has_adapter_card() else
                (self.classifier() or {}).get("labels"),
                "classifier": (self.classifier() or {}).get("use", "llm"), "threshold": self.threshold(),
                "val_a": summary.get("chosen_val_a") or summary.get("val_a"), "created": record.get("created")}

    def first_only(self) -> bool:
        """Whether the run's classifier is its first one (the classic model, fitted in the run's first seconds) and
        the LLM has no adapter yet: the classic model answers while it trains (studio.evaluate.first)."""
        return bool((self.classifier() or {}).get("first")) and not self.has_adapter_card()

    # ---- the adapter card (adapter/studio.json) --------------------------------------------------------
    def has_adapter_card(self) -> bool:
        return (self.adapter / ADAPTER_CARD).exists()

    def adapter_card(self) -> dict:
        """Label codes, rubric, prompt format, base model, class priors, temperature: what turns the adapter into
        a classifier. A run without a saved adapter says what to do."""
        card = read_adapter_card(self.adapter)
        if card is None:
            state = self.status().get("state", "unknown")
            raise StudioError(f"Run '{self.name}' has no saved adapter (state: {state}). Train it to the end, stop it "
                              "(stopping saves the adapter), or resume it.")
        return card

    def update_adapter_card(self, **fields) -> None:
        card = self.adapter_card()
        card.update(fields)
        write_adapter_card(self.adapter, card)

    # ---- what evaluation and training leave beside them --------------------------------------------------
    def write_evaluation(self, report: dict) -> None:
        write_json_atomic(self.path / "eval.json", report)

    def evaluation(self) -> dict | None:
        """The last evaluation's report (eval.json), None before the first."""
        try:
            return json.loads((self.path / "eval.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def hand_over(self, config: RunConfig, rows, facts: dict) -> None:
        """What the web app's Start hands its training processes (``studio.train.child``): the run's config, and
        the data file's checked rows and what was learnt reading it (``studio.data.table.LabeledTable.facts``), so
        the file is read once, by Start."""
        folder = self.path / LAUNCH
        folder.mkdir(exist_ok=True)
        with written_atomically(folder / "rows.parquet") as tmp:
            rows.to_parquet(tmp, index=False)
        write_json_atomic(folder / "launch.json", {"config": config.to_dict(), "table": facts})

    def handed_over(self):
        """(config, rows, facts) as ``hand_over`` left them."""
        folder = self.path / LAUNCH
        try:
            launch = json.loads((folder / "launch.json").read_text(encoding="utf-8"))
            return RunConfig.from_dict(launch["config"]), pd.read_parquet(folder / "rows.parquet"), launch["table"]
        except (OSError, ValueError, KeyError) as exc:
            raise StudioError(f"{self.path} holds no run handed over by the web app ({exc}).") from None

    def clear_hand_over(self) -> None:
        shutil.rmtree(self.path / LAUNCH, ignore_errors=True)

    def write_table(self, name: str, frame) -> Path:
        """A CSV a person opens (disagreements), safe to open in a spreadsheet (``studio.runs.sheets``)."""
        return write_csv(frame, self.path / name)

    def write_memory(self, record: dict) -> None:
        write_json_atomic(self.path / "memory.json", record)

    def set_status(self, state: str, **fields) -> None:
        assert state in STATES, state
        if self.readonly:
            return
        data = self.status()
        data.update(fields, state=state, updated=time.time(), pid=os.getpid())
        write_json_atomic(self.status_path, data)

    def note_status(self, **fields) -> None:
        """Fields beside the state (the worker's phase, the planned steps) for a face that watches the run from
        another process; the state and its process stay as they are."""
        if self.readonly:
            return
        data = self.status()
        data.update(fields, updated=time.time())
        write_json_atomic(self.status_path, data)

    def status(self) -> dict:
        if not self.status_path.exists():
            return {}
        try:
            return json.loads(self.status_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}

    def metrics(self) -> list[dict]:
        return MetricsStream.read(self.metrics_path)

    def last_logged(self) -> dict:
        """The last training record (its step, the planned last step, the loss): where a run stood when it stopped
        writing, crash or not."""
        return next((r for r in reversed(self.metrics()) if r.get("kind") == "train"), {})

    def checkpoint_folders(self) -> list[tuple[int, Path, bool]]:
        """(step, folder, complete) for every checkpoint folder. Complete: the studio's marker, written once the
        trainer had saved everything (a save cut short by a crash or a full disk has none)."""
        if not self.checkpoints.exists():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir()
                 if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and p.is_dir()]
        marked = any((p / CHECKPOINT_DONE).exists() for _, p in found)
        return sorted((step, p, (p / CHECKPOINT_DONE).exists() if marked else (p / "trainer_state.json").exists())
                      for step, p in found)

    def last_checkpoint(self) -> Path | None:
        complete = [p for _, p, done in self.checkpoint_folders() if done]
        return complete[-1] if complete else None

    def remove_incomplete_checkpoints(self) -> list[str]:
        """Partial checkpoints are deleted, so nothing half-written looks resumable (and a full disk gets space)."""
        removed = []
        for _, path, done in self.checkpoint_folders():
            if not done:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return removed

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def delete(self) -> None:
        if self.status().get("state") == "running" and _pid_alive(self.status().get("pid")):
            raise StudioError(f"Run '{self.name}' is still training; stop it before deleting.")
        shutil.rmtree(self.path)


PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")


def load_classic_file(path: Path):
    """A classic model saved by the studio (skops), loaded without running any code from the folder it is in: only
    the types scikit-learn vouches for are built, anything else is refused. None when there is no file."""
    import skops.io  # (scikit-learn's serializer: only where a classic model is saved or loaded)

    if not Path(path).exists():
        return None
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
        if untrusted:
            raise StudioError(f"{path} holds types the studio does not load ({', '.join(untrusted[:5])}): it was "
                              "not written by the studio. Evaluate the run again to fit a new one.")
        return skops.io.load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise StudioError(f"The classic model in {path} cannot be read ({exc}); evaluate the run again to fit a "
                          "new one.") from None


def require_safetensors(folder: Path) -> Path:
    """Weights are loaded from run folders only as safetensors: a pickled file (.bin, .pt) can run code when loaded,
    and a run folder may have come from someone else."""
    folder = Path(folder)
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for pattern in PICKLE_WEIGHTS for p in folder.glob(pattern))
        raise StudioError(f"{folder} has no .safetensors weights" + (
            f" (only {', '.join(pickled)}: pickle files can run code when loaded, so the studio does not load them "
            "from run folders)" if pickled else "") + ". Train or export the run again with the studio.")
    return folder


def _pid_alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError):
        return False


def effective_state(status: dict, live_names: set[str] = frozenset(), name: str = "") -> str:
    """'running' in a status file whose process is gone (a crash, a killed terminal) reads 'interrupted'."""
    state = status.get("state", "unknown")
    if state == "running" and name not in live_names and (status.get("pid") == os.getpid()
                                                           or not _pid_alive(status.get("pid"))):
        return "interrupted"
    return state


def list_runs(runs_dir: str | Path, live_names: set[str] = frozenset()) -> list[dict]:
    """One summary per run folder, newest first: the Runs table's rows."""
    runs_dir = Path(runs_dir)
    if not runs_dir.exists():
        return []
    out = []
    for path in runs_dir.iterdir():
        if not is_run_folder(path):
            continue
        run = RunDir(path)
        try:
            record = run.record()
        except StudioError:
            continue
        status = run.status()
        config = record.get("config", {})
        state = effective_state(status, live_names, run.name)
        last = run.last_logged() if state in ("running", "interrupted") else {}  # status.json moves at checkpoints
        out.append({
            "name": run.name, "path": str(path), "state": state,
            "created": record.get("created"), "model": config.get("model", {}).get("name"),
            "backend": record.get("backend", {}).get("name"), "step": last.get("step", status.get("step")),
            "max_steps": last.get("max_steps", status.get("max_steps")), "final_loss": status.get("final_loss"),
            "error": status.get("error"), "metrics": record.get("eval_summary"),
            "has_adapter": run.has_adapter_card(),
            "first_classifier": bool((record.get("classifier") or {}).get("first")),  # usable while it trains
        })
    return sorted(out, key=lambda r: r.get("created") or 0, reverse=True)
