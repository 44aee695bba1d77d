"""A run's trained model: the base model with the run's adapter, loaded from the run folder, and one such model kept
in memory for interactive use (Evaluate, Playground, Export): the model right after training when it is the run
asked for, else the saved run loaded once and reused."""

from __future__ import annotations

import threading

from studio.models.loading import load_with_adapter
from studio.runs.folder import RunDir, require_safetensors
from studio.runs.jobs import current

_lock = threading.Lock()
_kept: dict = {"key": None, "value": None}


def load_run_model(run, log=print):
    """Base model + the adapter of a run (or of a classifier bundle), on the GPU when there is one; returns (model,
    tokenizer, adapter card). The base model is the card's: a hub id loads by name, the embedded default from this
    machine's converted copy (made if needed), and the folder it was trained from when that still exists."""
    card = run.adapter_card()
    base = card.get("base_model") or run.config().model.name
    model, tokenizer = load_with_adapter(require_safetensors(run.adapter), base, base_source=card.get("base_source"),
                                         log=log)
    return model, tokenizer, card


def run_model(run: RunDir, log=print):
    """(model, tokenizer, adapter card) for a finished, stopped or failed-with-adapter run, loaded once."""
    job = current()
    if job is not None and job.done and job.model is not None and job.run.path.resolve() == run.path.resolve():
        return job.model, job.tokenizer, run.adapter_card()
    stamp = (run.adapter / "adapter_model.safetensors").stat().st_mtime if run.adapter.exists() else None
    key = (str(run.path.resolve()), stamp)
    with _lock:
        if _kept["key"] != key:
            _kept["key"], _kept["value"] = None, None  # let the previous model go before loading
            _kept["value"] = load_run_model(run, log=log)
            _kept["key"] = key
        model, tokenizer, _ = _kept["value"]
        return model, tokenizer, run.adapter_card()  # the card as saved now (a new threshold, a calibration)


def forget() -> None:
    with _lock:
        _kept["key"], _kept["value"] = None, None
