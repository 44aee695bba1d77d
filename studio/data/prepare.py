"""The data side end to end: file → validated table → codes → split → balanced, chat-formatted training set.

``prepare_data`` is what the trainer, the CLI and the UI call; it also writes the facts of the preparation
(file hash, resolved columns and codes, counts) back into the recipe so they are saved with the run.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from studio.config import SAMPLE_DATA, SAMPLE_RUBRIC, DataRecipe
from studio.data.formatting import fit_texts, resolve_prompt_format, training_ids
from studio.data.labels import (code_report, code_token_ids, default_rubric, out_of_scope_label, suggest_codes,
                                 unsure_target, validate_codes)
from studio.data.split import Split, balance_train, class_counts, split_table
from studio.data.table import LabeledTable, load_table
from studio.errors import StudioError
from studio.files import written_atomically

HEADER_CHOICES = {"auto": None, "yes": True, "no": False}
UPLOAD_HASH_CHARS = 12  # a kept upload's name: this many hex characters of its content hash, "-", its own name
DELIMITER_ALIASES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass
class PreparedData:
    table: LabeledTable
    codes: dict[str, str]  # label → code
    rubric: str
    prompt_format: str
    split: Split
    train: pd.DataFrame  # balanced and shuffled; ``text`` possibly truncated to fit max_seq_length
    code_rows: list[dict]
    warnings: list[str] = field(default_factory=list)
    truncated: int = 0
    train_lengths: list[int] = field(default_factory=list)  # tokens per formatted training row (with a tokenizer)
    out_of_scope: str | None = None  # the "none of these" class, where the labels have one
    unsure: float | None = None  # where "unsure" may be answered (no out-of-scope class): the answers' accuracy kept

    @property
    def labels(self) -> list[str]:
        return list(self.codes)

    @property
    def code_to_label(self) -> dict[str, str]:
        return {c: lb for lb, c in self.codes.items()}

    def counts(self) -> dict:
        labels = self.labels
        return {
            "input": class_counts(self.table.frame, labels),
            "train_before": class_counts(self.split.train, labels),
            "train_after": class_counts(self.train, labels),
            "val_a": class_counts(self.split.val_a, labels),
            "val_b": class_counts(self.split.val_b, labels),
        }

    def tokenized(self, tokenizer, frame: pd.DataFrame | None = None) -> list[dict]:
        """The training rows (default: the balanced training set) as the trainer takes them: input_ids and labels,
        tokenized once, the way scoring reads them (``training_ids``)."""
        frame = self.train if frame is None else frame
        rows = []
        for text, label in zip(frame["text"], frame["label"]):
            ids, labels = training_ids(tokenizer, self.rubric, text, self.codes[label], self.prompt_format)
            rows.append({"input_ids": ids, "labels": labels})
        return rows

    def train_classes(self) -> list[int]:
        """Each training row's class (its index in ``labels``), in the order of ``train`` and ``train_lengths``."""
        index = {lb: k for k, lb in enumerate(self.labels)}
        return [index[lb] for lb in self.train["label"]]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keep_upload(path: str | Path, runs_dir: str | Path) -> Path:
    """Copy an uploaded file (which lives in a temporary folder) beside the runs, named by its content hash, so
    the run's recorded data path stays valid for resume and evaluation."""

    path = Path(path)
    kept = Path(runs_dir) / ".uploads" / f"{file_sha256(path)[:UPLOAD_HASH_CHARS]}-{path.name}"
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        with written_atomically(kept) as tmp:
            shutil.copyfile(path, tmp)
    return kept


def original_name(path: str | Path) -> str:
    """The file's name as the user gave it: a kept upload without the content hash ``keep_upload`` put before it."""
    name = Path(path).name
    head, _, rest = name.partition("-")
    return rest if rest and len(head) == UPLOAD_HASH_CHARS and all(c in "0123456789abcdef" for c in head) else name


def load_recipe_table(recipe: DataRecipe) -> LabeledTable:
    if recipe.header not in HEADER_CHOICES:
        raise StudioError(f"header must be auto, yes or no (got '{recipe.header}').")
    delimiter = DELIMITER_ALIASES.get(recipe.delimiter.lower(), recipe.delimiter) if recipe.delimiter else None
    table = load_table(recipe.path, text_column=recipe.text_column or None, label_column=recipe.label_column or None,
                       header=HEADER_CHOICES[recipe.header], delimiter=delimiter, max_mb=recipe.max_file_mb,
                       max_classes=recipe.max_classes, drop_duplicates=recipe.drop_duplicates)
    table.sha256 = file_sha256(recipe.path)
    return table


def resolve_rubric(recipe: DataRecipe, codes: dict[str, str]) -> str:
    if recipe.rubric.strip():
        return recipe.rubric.strip()
    if Path(recipe.path).resolve() == SAMPLE_DATA.resolve() and SAMPLE_RUBRIC.exists():
        return SAMPLE_RUBRIC.read_text(encoding="utf-8").strip()
    return default_rubric(codes)


def prepare_data(recipe: DataRecipe, tokenizer=None, max_seq_length: int | None = None,
                 table: LabeledTable | None = None) -> PreparedData:
    """Run the whole data side. Without a tokenizer, token checks and truncation are skipped (inspect). ``table``:
    the recipe's file as already read and checked (a run reads its file once, at Start)."""
    table = load_recipe_table(recipe) if table is None else table
    labels = list(table.classes)
    codes = validate_codes(recipe.label_codes, labels) if recipe.label_codes else suggest_codes(labels, tokenizer)
    rubric = resolve_rubric(recipe, codes)
    fmt = resolve_prompt_format(tokenizer, recipe.prompt_format)
    code_rows, code_warnings = code_report(codes, tokenizer)
    if tokenizer is None and not recipe.label_codes:  # provisional letters: the run's codes are chosen with the
        code_warnings = []  # model's tokenizer, and warned about then (the run's own codes, not these)

    split = split_table(table.frame, val_fraction=recipe.val_fraction, val_b_per_class=recipe.val_b_per_class,
                        seed=recipe.split_seed)
    train = balance_train(split.train, balance=recipe.balance, minority_share=recipe.minority_share,
                          undersample_majority=recipe.undersample_majority, seed=recipe.split_seed)
    balanced = recipe.balance != "natural"  # the advice to balance is already followed
    warnings = [w for w in table.warnings if not (balanced and w.startswith("Imbalanced classes"))]
    warnings += code_warnings + split.warnings
    cut_rows: set[int] = set()
    lengths: dict[str, list[int]] = {}
    if tokenizer is not None and max_seq_length:
        longest_code = max(len(code_token_ids(tokenizer, c)) for c in codes.values())
        fitted = {}
        for name, frame in (("train", train), ("val_a", split.val_a), ("val_b", split.val_b)):
            texts, lengths[name] = fit_texts(tokenizer, list(frame["text"]), rubric, fmt, max_seq_length, longest_code)
            cut_rows.update(r for r, old, new in zip(frame["row"], frame["text"], texts) if old != new)
            fitted[name] = frame.assign(text=texts)
        train = fitted["train"]
        split = Split(train=split.train, val_a=fitted["val_a"], val_b=fitted["val_b"], warnings=split.warnings)
    truncated = len(cut_rows)  # distinct source rows: an oversampled row counts once
    if truncated:
        warnings.append(f"{truncated} texts are longer than max_seq_length={max_seq_length} tokens with the "
                        "prompt: they were truncated. Raise max_seq_length if the end of a text matters.")

    prepared = PreparedData(table=table, codes=codes, rubric=rubric, prompt_format=fmt, split=split, train=train,
                            code_rows=code_rows, warnings=warnings, truncated=truncated,
                            train_lengths=lengths.get("train", []),
                            out_of_scope=out_of_scope_label(labels, recipe.out_of_scope))
    prepared.unsure = unsure_target(recipe.unsure, labels, prepared.out_of_scope)
    if recipe.unsure and prepared.out_of_scope:
        prepared.warnings.append(f"'unsure' is not used: uncertain texts get the out-of-scope class "
                                 f"'{prepared.out_of_scope}' (its reject rule).")
    # Record what was actually used, so run.json reproduces the same sets.
    recipe.sha256 = table.sha256
    recipe.text_column, recipe.label_column = table.text_column, table.label_column
    recipe.label_codes = dict(codes)
    recipe.counts = prepared.counts()
    return prepared
