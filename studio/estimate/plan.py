"""The recipe as far as it can be decided before the model loads (shown before Start by every face): the device
guessed, the model's size read from its config.json (no weights), the memory share from the estimate (the GPU's, or
the RAM on a CPU), the micro-batch's cost from the rows' lengths and classes when known."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from studio.config import RunConfig, validate_config
from studio.data.order import cost_per_row
from studio.data.prepare import prepare_data
from studio.data.table import LabeledTable
from studio.errors import StudioError
from studio.estimate.model_shape import read_shape
from studio.estimate.ram import ram_share
from studio.estimate.recipe import Resolved, resolve, step_warnings
from studio.estimate.vram import detect_gpu, estimate_vram
from studio.machine import device_guess
from studio.models.loading import cpu_computes_bf16


def preview(config: RunConfig, train_rows: int | None = None, lengths: list[int] | None = None,
            classes: list[int] | None = None) -> Resolved:
    """The decisions as far as they can be made before the model loads."""
    device = device_guess()
    try:
        shape, pre_quantized = read_shape(config.model.name)
    except (StudioError, OSError):
        shape, pre_quantized = None, False
    fits = None
    if device == "cpu" and shape is not None:
        fits = ram_share(shape, lengths, config.model.max_seq_length, cpu_computes_bf16(config.model))
    if device == "cuda" and shape is not None:
        gpu = detect_gpu()
        if gpu:
            def fits(batch: int, checkpointing: str, four_bit: bool) -> float:
                trial = config.replace({"train": {"per_device_train_batch_size": batch},
                                        "lora": {"use_gradient_checkpointing": checkpointing}})
                return estimate_vram(trial, shape, lengths=lengths, load_in_4bit=pre_quantized or four_bit,
                                     gpu_name=gpu[0], gpu_total_gb=gpu[1]).share
    return resolve(config, device=device, params=shape.params if shape else None, train_rows=train_rows, fits=fits,
                   cost=row_cost(lengths, classes, config.train.seed))


def row_cost(lengths: list[int] | None, classes: list[int] | None, seed: int):
    """``cost(micro_batch, step_rows)`` for the recipe, from the training rows' lengths and classes (None without)."""
    if not lengths or not classes or len(lengths) != len(classes):
        return None
    return lambda micro_batch, step_rows: cost_per_row(lengths, classes, micro_batch, step_rows, seed)


@dataclass
class Preflight:
    warnings: list[str]  # the data's and the settings'
    table: LabeledTable  # the data file as read and checked: the run prepares its sets from it, not from the file


def preflight(config: RunConfig, table: LabeledTable | None = None) -> Preflight:
    """Before a run starts (in the caller's thread, so bad input is an immediate error): the data read and checked
    once (``table``: already read, by the web app at Start) and prepared on a copy (the codes are chosen with the
    model's tokenizer once it is loaded), and the settings validated. The warnings about the run's length come once
    its recipe is resolved (the worker)."""
    prepared = prepare_data(copy.deepcopy(config.data), table=table)
    return Preflight(list(dict.fromkeys(prepared.warnings + validate_config(config))), prepared.table)


def check_config(config: RunConfig, train_rows: int | None = None, gpus: int = 1) -> list[str]:
    """``validate_config`` (raises for settings that cannot work), plus, when the training rows are known, the
    warnings about the run's length from the recipe as previewed (its auto settings decided)."""
    warnings = validate_config(config)
    if train_rows is not None:
        warnings += step_warnings(preview(config, train_rows).config.train, train_rows, gpus)
    return warnings
