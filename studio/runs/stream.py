"""The live metrics stream a run appends to and the UI and the CLI poll: in memory for a run trained in this process
(mirrored to ``metrics.jsonl``), or tailed from ``metrics.jsonl`` for a run trained by other processes. Both have one
read API (``records``, ``last``, ``len``). Light on purpose: the page imports it without torch or transformers.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path


class MetricsStream:
    """Append-only records; readers take copies, so the worker never waits on the UI."""

    def __init__(self, path: str | Path | None = None):
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._path = Path(path) if path else None
        self.write_error: str | None = None  # e.g. a full disk: the stream lives on in memory

    def append(self, record: dict) -> None:
        record = {"time": round(time.time(), 3), **record}
        with self._lock:
            self._records.append(record)
            if self._path and not self.write_error:
                try:
                    with open(self._path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record) + "\n")
                except OSError as exc:  # the run must fail on what matters (a checkpoint), not on its log
                    self.write_error = f"{self._path}: {exc}"

    def _sync(self) -> None:
        """Bring the records up to date before a read (a file-backed stream reads what was appended since)."""

    def records(self, kind: str | None = None, since: int = 0) -> list[dict]:
        with self._lock:
            self._sync()
            chosen = self._records[since:]
        return [dict(r) for r in chosen if kind is None or r.get("kind") == kind]

    def last(self, kind: str = "train") -> dict | None:
        with self._lock:
            self._sync()
            for record in reversed(self._records):
                if record.get("kind") == kind:
                    return dict(record)
        return None

    def __len__(self) -> int:
        with self._lock:
            self._sync()
            return len(self._records)

    @staticmethod
    def read(path: str | Path) -> list[dict]:
        """Every complete record of a ``metrics.jsonl`` (a line cut short by a crash is skipped)."""
        path = Path(path)
        if not path.exists():
            return []
        return _parse(path.read_text(encoding="utf-8"))


class FileStream(MetricsStream):
    """The records another process appends to ``metrics.jsonl`` (rank 0 of a multi-GPU run), read incrementally:
    each read takes only the complete lines written since the last one."""

    def __init__(self, path: str | Path):
        super().__init__(None)
        self.source, self._offset = Path(path), 0

    def append(self, record: dict) -> None:
        raise TypeError("A FileStream is read-only: the process that trains appends to its file.")

    def _sync(self) -> None:
        if not self.source.exists():
            return
        with open(self.source, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self._offset += len(complete)
        self._records.extend(_parse(complete.decode("utf-8", errors="replace")))


def _parse(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    return out
