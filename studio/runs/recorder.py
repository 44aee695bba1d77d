"""The run record of a run being trained, written phase by phase: each phase of the recipe (data, recipe, model,
trainer, plan, ...) records what it learnt once, atomically, with how long it took. The record is held here and
written whole, so no phase re-reads the file another one wrote (torchtune's recipes build their collaborators once in
``setup`` and hand them on; this is the same for the record).
"""

from __future__ import annotations

import threading
import time

from studio.config import RunConfig
from studio.files import write_json_atomic
from studio.runs.folder import RunDir


class RunRecorder:
    def __init__(self, run: RunDir, config: RunConfig):
        self.run, self.config = run, config
        self.record: dict = run.record() if run.has_record() else {}
        self._mark = time.time()
        self._lock = threading.Lock()  # a thread beside the phases writes too (the first classifier)

    def phase(self, name: str, **facts) -> None:
        """Record phase ``name`` as done: what it learnt (``facts``), and its seconds since the previous phase ended."""
        now = time.time()
        with self._lock:
            self.record.setdefault("phases", {})[name] = round(now - self._mark, 2)
            self._mark = now
            self._write(facts)

    def note(self, **facts) -> None:
        """Record ``facts`` learnt beside the phases (the first classifier's decision and figures)."""
        with self._lock:
            self._write(facts)

    def _write(self, facts: dict) -> None:
        self.record.update(facts)
        self.record["config"] = self.config.to_dict()
        if not self.run.readonly:
            write_json_atomic(self.run.run_json, self.record)
