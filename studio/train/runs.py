"""Run folders on disk: ``runs/<name>/`` holds run.json, metrics.jsonl, status.json, train.log, checkpoints/ and
the final adapter/. Nothing a run wrote is deleted when it fails or stops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from studio.config import RunConfig
from studio.errors import StudioError

STATES = ("running", "finished", "stopped", "failed")
ADAPTER_META = "studio.json"  # label map, rubric, prompt format and threshold beside the adapter weights
CHECKPOINT_DONE = "studio_checkpoint_complete"  # written after the trainer finished saving a checkpoint
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


def run_minority_label(facts: dict) -> str | None:
    """The run's smallest class (in its input data), from run.json's facts; None when no counts were recorded."""
    data = facts.get("config", {}).get("data", {})
    counts = data.get("counts", {}).get("input", {})
    labels = list(data.get("label_codes") or counts)
    return min(labels, key=lambda lb: counts.get(lb, 0)) if counts and labels else None


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class RunDir:
    path: Path
    readonly: bool = False  # ranks other than 0 of a multi-GPU run read the folder and write nothing

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

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
        if inside_only or not (path / "run.json").exists():
            path = Path(runs_dir) / sanitize_name(str(path_or_name))
        if not (path / "run.json").exists():
            raise StudioError(f"No run at {path_or_name}: a run folder holds run.json. "
                              f"Runs in {runs_dir}: {', '.join(r['name'] for r in list_runs(runs_dir)) or 'none'}.")
        return cls(path)

    # ---- contents --------------------------------------------------------------------------------------
    def write_run_json(self, config: RunConfig, **facts) -> None:
        if self.readonly:
            return
        data = self.read_run_json() if self.run_json.exists() else {}
        data.update(facts)
        data["config"] = config.to_dict()
        write_json_atomic(self.run_json, data)

    def read_run_json(self) -> dict:
        try:
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StudioError(f"{self.run_json} cannot be read ({exc}).") from None

    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.read_run_json()["config"])

    def set_status(self, state: str, **fields) -> None:
        assert state in STATES, state
        if self.readonly:
            return
        data = self.status()
        data.update(fields, state=state, updated=time.time(), pid=os.getpid())
        write_json_atomic(self.status_path, data)

    def status(self) -> dict:
        if not self.status_path.exists():
            return {}
        try:
            return json.loads(self.status_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}

    def metrics(self) -> list[dict]:
        from studio.train.stream import MetricsStream

        return MetricsStream.read(self.metrics_path)

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
        if not (path / "run.json").exists():
            continue
        run = RunDir(path)
        try:
            facts = run.read_run_json()
        except StudioError:
            continue
        status = run.status()
        config = facts.get("config", {})
        out.append({
            "name": run.name, "path": str(path),
            "state": effective_state(status, live_names, run.name),
            "created": facts.get("created"), "model": config.get("model", {}).get("name"),
            "backend": facts.get("backend", {}).get("name"), "step": status.get("step"),
            "max_steps": status.get("max_steps"), "final_loss": status.get("final_loss"),
            "error": status.get("error"), "metrics": facts.get("eval_summary"),
        })
    return sorted(out, key=lambda r: r.get("created") or 0, reverse=True)
