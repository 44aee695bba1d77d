"""Files written whole or not at all: every file the studio writes for later (a run's records, a cleaned copy, a
cache, a chunk of predictions) goes to a temporary name beside its place and is renamed over it when complete, so a
kill or a full disk mid-write never leaves half a file where a reader looks."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def written_atomically(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary name beside ``path`` (its name + ``suffix``) to write to; renamed over ``path`` when the block
    ends, removed when it raises."""
    path = Path(path)
    tmp = path.with_name(path.name + suffix)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, data, indent: int | None = 2) -> None:
    with written_atomically(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, ensure_ascii=False, default=_plain), encoding="utf-8")


def _plain(value):
    """A numpy number as the number it is; anything else JSON cannot write (a path, a date) as its text."""
    return value.item() if hasattr(value, "item") and not hasattr(value, "__len__") else str(value)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """``data`` on disk (flushed to the device) before it takes ``path``'s place."""
    with written_atomically(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
