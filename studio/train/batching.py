"""The trainer's sampler: the training rows in the order of ``studio.data.order`` (every optimizer step holds every
class in its share, each class at one length quantile)."""

from __future__ import annotations

from torch.utils.data import Sampler

from studio.data.order import stratified_order


class StratifiedLengthSampler(Sampler):
    """A sampler for the trainer's DataLoader (``batch_size`` = ``micro_batch``, ``step_rows`` = micro-batch × gradient
    accumulation); a new order every epoch, the same order for the same seed and epoch (a resumed run skips exactly the
    batches it had trained)."""

    def __init__(self, lengths: list[int], classes: list[int], micro_batch: int, seed: int,
                 step_rows: int | None = None):
        if len(lengths) != len(classes):
            raise ValueError(f"{len(lengths)} lengths for {len(classes)} rows")
        self.lengths, self.classes, self.micro_batch, self.seed = list(lengths), list(classes), micro_batch, seed
        self.step_rows = step_rows or micro_batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        return iter(stratified_order(self.lengths, self.classes, self.micro_batch, self.seed + self.epoch,
                                     self.step_rows))
