"""Prediction files written as they go, that survive a kill: each chunk of output rows is written to its own file in
``OUT.partial/`` (to a temporary name, renamed when complete), beside a manifest of what the rows depend on (the
input, the classifier, the chunk size). A rerun keeps the chunks that are there and classifies only the others, so
no row is lost and none is written twice; several processes (``accelerate launch``) share one folder, each writing
its own chunks. ``finish`` joins the chunks in input order into ``OUT``, renamed into place.

Formats by the output's extension: CSV and TSV (for spreadsheets: a text cell that starts like a formula gets a
leading apostrophe, ``studio.runs.sheets``), JSONL and Parquet (every value exactly as it is).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from studio.errors import StudioError
from studio.files import write_bytes_atomic, written_atomically
from studio.runs.sheets import for_spreadsheets

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
MANIFEST = "manifest.json"


def output_format(path: str | Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise StudioError(f"{Path(path).name}: predictions are written as .csv, .tsv, .jsonl or .parquet; pick one "
                          "of those endings for the output.")
    return fmt


@dataclass
class ChunkedOutput:
    """``write(number, frame)`` for each chunk, ``finish(chunks)`` at the end; ``done``: the chunks already there.
    ``create``: this process sets the folder up (the only one, or rank 0); the others join it."""

    path: Path
    settings: dict  # what the rows depend on (the input's fingerprint, the classifier): a resume must match
    chunk_rows: int  # input rows per chunk (a resume keeps the size the folder was started with)
    restart: bool = False
    numbers: set[str] = field(default_factory=set)  # columns written as numbers (Parquet)
    create: bool = True

    def __post_init__(self):
        self.path = Path(self.path)
        self.fmt = output_format(self.path)
        self.folder = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest()
        if not self.create:
            if manifest is None:
                raise StudioError(f"{self.folder} was not set up by the first process.")
        elif manifest is not None and not self.restart:
            if manifest.get("settings") != self.settings:
                raise StudioError(f"{self.folder} holds a partial output of another input or classifier: finish it "
                                  "with the same file and run, or start over (--restart).")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir()
            manifest = {"settings": self.settings, "chunk_rows": self.chunk_rows}
            write_bytes_atomic(self.folder / MANIFEST, json.dumps(manifest).encode())
        self.chunk_rows = manifest["chunk_rows"]

    @property
    def done(self) -> set[int]:
        return {int(p.name.split("-")[1].split(".")[0]) for p in self.folder.glob(f"chunk-*.{self.fmt}")}

    def write(self, number: int, frame: pd.DataFrame) -> None:
        """One chunk of output rows (CSV and TSV: the header goes with chunk 0)."""
        target = self._chunk(number)
        if self.fmt == "parquet":
            import pyarrow as pa  # (pyarrow: only for Parquet outputs)
            import pyarrow.parquet as pq

            frame = frame.astype({c: "float64" for c in frame.columns if c in self.numbers})
            with written_atomically(target) as tmp:
                pq.write_table(pa.Table.from_pandas(frame, schema=_schema(frame, self.numbers),
                                                    preserve_index=False), tmp)
            return
        if self.fmt in ("csv", "tsv"):
            data = for_spreadsheets(frame).to_csv(index=False, header=number == 0, lineterminator="\n",
                                                  sep="," if self.fmt == "csv" else "\t")
        else:  # one object per line, each line ending with a newline
            data = frame.to_json(orient="records", lines=True, force_ascii=False) if not frame.empty else ""
        write_bytes_atomic(target, data.encode("utf-8"))

    def finish(self, chunks: int) -> Path:
        """Chunks 0 … chunks-1 joined in order into the output, renamed into place; the partial folder removed."""
        missing = sorted(set(range(chunks)) - self.done)
        if missing:
            raise StudioError(f"{self.folder} misses chunks {missing[:5]}: run the same command again to make them.")
        with written_atomically(self.path, ".joining") as joined:
            if self.fmt == "parquet":
                self._join_parquet(chunks, joined)
            else:
                with open(joined, "wb") as out:
                    for number in range(chunks):
                        with open(self._chunk(number), "rb") as part:
                            shutil.copyfileobj(part, out)
                    out.flush()
                    os.fsync(out.fileno())
        shutil.rmtree(self.folder, ignore_errors=True)
        return self.path

    def _join_parquet(self, chunks: int, joined: Path) -> None:
        import pyarrow.parquet as pq  # (pyarrow: only for Parquet outputs)

        writer = None
        try:
            for number in range(chunks):
                table = pq.read_table(self._chunk(number))
                writer = writer or pq.ParquetWriter(joined, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pd.DataFrame().to_parquet(joined)

    def _chunk(self, number: int) -> Path:
        return self.folder / f"chunk-{number:08d}.{self.fmt}"

    def _manifest(self) -> dict | None:
        try:
            return json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # none yet, or a kill before it was complete: nothing of the folder counts




def _schema(frame: pd.DataFrame, numbers: set[str]):
    """Floats for the ``numbers`` columns, strings for the rest: the same schema for every chunk (a chunk of empty
    texts has no probability to infer a type from)."""
    import pyarrow as pa  # (pyarrow: only for Parquet outputs)

    return pa.schema([pa.field(c, pa.float64() if c in numbers else pa.string()) for c in frame.columns])
