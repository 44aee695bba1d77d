"""The recipe as far as it can be decided before the model loads (shown before Start by every face): the device
guessed, the model's size read from its config.json (no weights), the memory share from the estimate (the GPU's, or
the RAM on a CPU), the micro-batch's cost from the rows' lengths and classes when known."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from studio.config import RunConfig, validate_config
from studio.data.order import cost_per_row
from studio.data.prepare import PreparedData, prepare_data
from studio.data.table import LabeledTable
from studio.errors import StudioError
from studio.estimate.model_shape import ModelShape, read_shape
from studio.estimate.ram import ram_share
from studio.estimate.recipe import Resolved, resolve, step_warnings
from studio.estimate.vram import detect_gpu, vram_share
from studio.machine import device_guess, has_module
from studio.models.loading import cpu_computes_bf16, resolve_source


def preview(config: RunConfig, train_rows: int | None = None, lengths: list[int] | None = None,
            classes: list[int] | None = None) -> Resolved:
    """The decisions as far as they can be made before the model loads."""
    device = device_guess()
    try:
        shape, pre_quantized = read_shape(config.model.name)
    except (StudioError, OSError):
        shape, pre_quantized = None, False
    fits = memory_share(config, shape, device, lengths, pre_quantized=pre_quantized) if shape else None
    return resolve(config, device=device, params=shape.params if shape else None, train_rows=train_rows, fits=fits,
                   cost=row_cost(lengths, classes, config.train.seed))


def resolve_for_run(config: RunConfig, backend, prepared: PreparedData, started: dict | None,
                    log=lambda message: None) -> Resolved:
    """The settings left on auto, decided as a run starts: from its device and backend (``backend``: name, device),
    the model's size (its config, read where the run loads it from) and the prepared rows (their lengths and
    classes, the memory they take); a resumed run keeps the plan it ``started`` with (its record's)."""
    try:
        shape, pre_quantized = read_shape(resolve_source(config.model.name, log=log))
    except Exception:  # the size is a hint for the learning rate; the run does not need it
        shape, pre_quantized = None, False
    fits = None if shape is None else memory_share(
        config, shape, backend.device, prepared.train_lengths, backend=backend.name, pre_quantized=pre_quantized,
        four_bit_available=has_module("bitsandbytes"))  # without bitsandbytes a 4-bit choice loads 16-bit
    resolved = resolve(config, device=backend.device, params=shape.params if shape else None,
                       train_rows=len(prepared.train), fits=fits,
                       cost=row_cost(prepared.train_lengths, prepared.train_classes(), config.train.seed))
    if started is not None:
        _keep_the_started_plan(resolved, started)
    return resolved


def _keep_the_started_plan(resolved: Resolved, planned: dict) -> None:
    for key in ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "eval_steps",
                "max_steps"):
        if planned.get(key) is not None:
            setattr(resolved.config.train, key, planned[key])
    if planned.get("load_in_4bit") in ("true", "false"):  # the weights it trained on, whatever fits now
        resolved.config.model.load_in_4bit = planned["load_in_4bit"]
    if planned.get("pace"):  # a paced budget: the trainer's limit again, and the budget's rest (the run's pacer)
        resolved.config.train.max_steps = planned["pace"]["limit"]
    else:
        resolved.time_budget_s = None


def memory_share(config: RunConfig, shape: ModelShape, device: str, lengths: list[int] | None, *,
                 backend: str = "unsloth", pre_quantized: bool = False, four_bit_available: bool = True):
    """``share(micro_batch, checkpointing, four_bit)``: the share of the device's memory a run of ``config`` takes
    with those settings, which the recipe's auto settings are decided by: of the RAM on a CPU, of the GPU on CUDA
    (None where no GPU is found). The one such function for the plan before Start and the run itself."""
    if device == "cpu":
        return ram_share(shape, lengths, config.model.max_seq_length, cpu_computes_bf16(config.model))
    gpu = detect_gpu() if device == "cuda" else None
    if gpu is None:
        return None
    return vram_share(config, shape, lengths, backend, gpu[0], gpu[1],
                      loads_4bit=lambda chosen: pre_quantized or (chosen and four_bit_available))


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
