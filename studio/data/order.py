"""The order of the training rows: optimizer steps that each hold every class in its training share, each class's
rows taken at the same length quantile, and within a step the rows sorted by length, so its micro-batches pad little.

Not plain length grouping (transformers' ``group_by_length``): where length goes with the class, sorting by length
builds batches of one class and the model see-saws between the classes and learns neither; random batches mix the
classes but pad half of every batch on such data. ``cost_per_row`` weighs the padding against a micro-step's fixed
cost, and the recipe takes the cheapest micro-batch on a CPU. Measured: docs/benchmarks.md, "Batches that hold every
class".
"""

from __future__ import annotations

import numpy as np

WINDOW = 50  # micro-batches drawn and sorted together (transformers' megabatch); their order is then shuffled


def class_slots(counts: list[int]) -> np.ndarray:
    """The class of each of ``sum(counts)`` slots, spread so that every stretch of slots holds each class in its share:
    a class's j-th row sits at (j + ½) / its count along the epoch, and the slots follow that order."""
    keys = np.concatenate([(np.arange(n) + 0.5) / n for n in counts if n])
    owners = np.concatenate([np.full(n, k) for k, n in enumerate(counts) if n])
    return owners[np.lexsort((owners, keys))]


def stratified_order(lengths: list[int], classes: list[int], micro_batch: int, seed: int,
                     step_rows: int | None = None) -> list[int]:
    """Row indices in training order: consecutive runs of ``micro_batch`` are the micro-batches, of ``step_rows`` (a
    multiple of it; default one micro-batch) the optimizer steps. Every step holds each class in its share; within a
    step the rows are sorted by length, so where a class is longer its rows share micro-batches and pad little."""
    lengths, classes = np.asarray(lengths), np.asarray(classes)
    step = step_rows if step_rows and step_rows % micro_batch == 0 else micro_batch
    rng = np.random.default_rng(seed)
    labels = np.unique(classes)
    pools = {k: list(rng.permutation(np.flatnonzero(classes == k))) for k in labels}
    slots = labels[class_slots([len(pools[k]) for k in labels])]
    order = np.empty(len(slots), dtype=int)
    window = WINDOW * step
    for start in range(0, len(slots), window):
        part = slots[start:start + window]
        for k in labels:
            where = np.flatnonzero(part == k)
            taken, pools[k] = pools[k][:len(where)], pools[k][len(where):]
            # within the window, a class's shortest rows go to its first slots: every step takes each class at the
            # same length quantile
            taken = np.asarray(taken, dtype=int)
            order[start + where] = taken[np.argsort(lengths[taken], kind="stable")]
        rows = order[start:start + len(part)]  # each step's rows sorted by length (stable: ties keep their order)
        order[start:start + len(part)] = rows[np.lexsort((lengths[rows], np.arange(len(part)) // step))]
        full = len(part) // step  # a last, shorter step stays last
        steps = order[start:start + full * step].reshape(full, step)
        order[start:start + full * step] = steps[rng.permutation(full)].ravel()
    return widest_step_first(order, lengths, step).tolist()


def widest_step_first(order: np.ndarray, lengths: np.ndarray, step: int) -> np.ndarray:
    """The order with the step that holds the longest row moved to the front. Memory then peaks at the first step and
    every later, narrower one reuses what it freed: on a CPU, Financial PhraseBank's widest step at its place in the
    order (the 41st) left the process at 8.5 GiB, first at 6.1 (docs/benchmarks.md, "CPU: training memory over a
    run"); and a run that does not fit fails at its first step, not minutes in."""
    full = len(order) // step  # a last, shorter step stays last
    if full < 2:
        return order
    widest = int(np.argmax(lengths[order[:full * step]])) // step
    if widest == 0:
        return order
    steps = order[:full * step].reshape(full, step)
    moved = np.concatenate([steps[widest:widest + 1], steps[:widest], steps[widest + 1:]]).ravel()
    return np.concatenate([moved, order[full * step:]])


MICRO_BATCH_OVERHEAD_TOKENS = 100  # a CPU micro-step's fixed cost, in tokens of compute (docs/benchmarks.md)


def cost_per_row(lengths: list[int], classes: list[int], micro_batch: int, step_rows: int, seed: int = 0) -> float:
    """The compute one training row costs, in tokens: its micro-batch's padded width, plus the micro-step's fixed
    cost shared by its rows."""
    lengths = np.asarray(lengths)
    order = np.asarray(stratified_order(lengths, classes, micro_batch, seed, step_rows))
    if not len(order):
        return MICRO_BATCH_OVERHEAD_TOKENS / micro_batch
    starts = np.arange(0, len(order), micro_batch)  # each micro-batch's widest row, times its rows
    widths = np.maximum.reduceat(lengths[order], starts)
    padded = float((widths * np.diff(np.append(starts, len(order)))).sum())
    return padded / len(order) + MICRO_BATCH_OVERHEAD_TOKENS / micro_batch
