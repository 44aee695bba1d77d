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
_beside: dict = {}  # name -> (stamp, model, what was built on it): see kept_beside


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
            _beside.clear()
            _kept["value"] = load_run_model(run, log=log)
            _kept["key"] = key
        model, tokenizer, _ = _kept["value"]
        return model, tokenizer, run.adapter_card()  # the card as saved now (a new threshold, a calibration)


def kept_beside(run: RunDir, name: str, stamp, build, log=print):
    """``build((model, tokenizer, card))`` on the run's model as ``run_model`` gives it, kept beside that model while
    ``stamp`` stays the same (the Playground's classifier, whose scorers hold the rubric's cache), and let go with it:
    when another model is kept, or a new run starts (``let_go_beside``)."""
    loaded = run_model(run, log=log)
    with _lock:
        held = _beside.pop(name, None)
        if held is not None and held[0] == stamp and held[1] is loaded[0]:
            _beside[name] = held
            return held[2]
    value = build(loaded)
    with _lock:
        _beside[name] = (stamp, loaded[0], value)
    return value


def let_go_beside() -> None:
    """Let go of what was built on a model (a new run is about to train: the memory is its)."""
    with _lock:
        _beside.clear()


def forget() -> None:
    with _lock:
        _kept["key"], _kept["value"] = None, None
        _beside.clear()
