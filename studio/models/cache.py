"""One trained classifier kept in memory for interactive use (Evaluate, Playground, Export in the UI): the model
right after training when it is the run asked for, else the saved run loaded once and reused."""

from __future__ import annotations

import threading

from studio.train.runs import RunDir

_lock = threading.Lock()
_cached: dict = {"key": None, "value": None}


def run_model(run: RunDir, log=print):
    """(model, tokenizer, meta) for a finished, stopped or failed-with-adapter run."""
    from studio.evaluate.evaluator import adapter_meta, load_run_model
    from studio.train.jobs import current

    job = current()
    if job is not None and job.done and job.model is not None and job.run.path.resolve() == run.path.resolve():
        return job.model, job.tokenizer, adapter_meta(run)
    stamp = (run.adapter / "adapter_model.safetensors").stat().st_mtime if run.adapter.exists() else None
    key = (str(run.path.resolve()), stamp)
    with _lock:
        if _cached["key"] != key:
            _cached["key"], _cached["value"] = None, None  # let the previous model go before loading
            _cached["value"] = load_run_model(run, log=log)
            _cached["key"] = key
        return _cached["value"]


def forget() -> None:
    with _lock:
        _cached["key"], _cached["value"] = None, None
