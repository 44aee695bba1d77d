"""TRL's SFTTrainer as the studio uses it: the trainer's settings from the run config (a pure function), and the
trainer class itself, whose ``compute_loss`` (TRL's extension point) computes the classifier's loss at the answer
positions only (``studio.train.objective``).

TRL's own loss (a fused LM head over every position, whose kernel is written in Triton) would also not run on a CPU:
the CPU torch wheel ships no Triton.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from studio.config import RunConfig
from studio.data.formatting import answer_ids, prefix_ids
from studio.data.prepare import PreparedData

NEVER = 10**9  # steps: checkpoints come by time (studio.train.callback) unless save_steps asks for step-based ones


def sft_args(config: RunConfig, *, output_dir: str | Path, optim: str, dtype: str, device: str,
             autocast: str | None = None) -> dict:
    """The keyword arguments of TRL's ``SFTConfig`` for a run: the trainer's settings from the run config, the
    effective optimizer and dtype (``autocast``: bfloat16 compute over float32 weights), checkpoints by time (the
    callback asks for them; ``save_steps`` adds step-based ones), rows grouped by length (less padding; the trainer
    class refines this into class-stratified batches when it knows each row's class)."""
    train = config.train
    return dict(
        output_dir=str(output_dir), per_device_train_batch_size=train.per_device_train_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps, warmup_steps=train.warmup_steps,
        max_steps=train.max_steps, num_train_epochs=train.num_train_epochs, learning_rate=train.learning_rate,
        optim=optim, lr_scheduler_type=train.lr_scheduler_type, weight_decay=train.weight_decay,
        logging_steps=train.logging_steps, seed=train.seed, packing=train.packing,
        max_length=config.model.max_seq_length, save_strategy="steps",
        save_steps=train.save_steps or NEVER, save_total_limit=2, report_to="none",
        # Rows stay rows (Unsloth would pack them "padding-free"): the loss re-pads them on the left and reads the
        # logits at the answer only, and rows grouped by length leave little padding.
        padding_free=False,
        disable_tqdm=True, bf16="bfloat16" in (dtype, autocast), fp16=dtype == "float16", use_cpu=device == "cpu",
        train_sampling_strategy="group_by_length",
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
        gradient_checkpointing=False,  # the model loader applies the run's checkpointing choice itself
    )


@dataclass
class Objective:
    """What the loss needs to know about the task: the codes' first tokens, the shared prompt prefix, the pad id."""

    name: str
    code_first_ids: list[int]
    pad_id: int
    prefix_ids: list[int] | None = None  # None: no prefix sharing
    classes: list[int] | None = None  # each training row's class, in the dataset's order: class-stratified batches


def choose_objective(tokenizer, prepared: PreparedData, wanted: str, share_prefix: bool, why_not: str | None,
                     log: Callable[[str], None]) -> Objective:
    """The loss's view of the task: each code's first answer token (the codes' loss needs them distinct: else the
    next-token loss), and the shared prompt prefix where the backend can run it once per micro-batch (``why_not``:
    what prevents that, None when nothing does)."""
    first = [answer_ids(tokenizer, prepared.rubric, prepared.prompt_format, code)[0]
             for code in prepared.codes.values()]
    name = wanted
    if "codes" in name and len(set(first)) < len(first):
        name = "next_token"
        log("Notice: some codes start with the same token, so the loss cannot choose among the codes at the first "
            "token; training with the next-token loss only (rename the codes to fix this).")
    share = share_prefix and why_not is None
    if share_prefix and why_not:
        log(f"The prompt prefix is run per row ({why_not} needs it).")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return Objective(name, first, pad, prefix_ids(tokenizer, prepared.rubric, prepared.prompt_format)
                     if share else None, classes=prepared.train_classes())


def sft_trainer_class():
    """Built on first use: importing trl must wait until unsloth (if used) has patched it."""
    from trl import SFTTrainer  # (after unsloth's patches)

    from studio.train.batching import StratifiedLengthSampler  # (torch: after unsloth's patches, like trl)
    from studio.train.objective import answer_logits, classifier_loss, left_pad

    class StudioSFTTrainer(SFTTrainer):
        def __init__(self, *args, objective: Objective, **kwargs):
            super().__init__(*args, **kwargs)
            self.objective = objective
            # The loss is a mean per micro-batch: the trainer divides it by the accumulation steps itself.
            self.model_accepts_loss_kwargs = False

        def sampler_for(self, dataset):
            """Steps that hold every class in its share, each at one length quantile (studio.data.order); None when
            the rows' classes are unknown."""
            if self.objective.classes is None or len(self.objective.classes) != len(dataset):
                return None
            micro_batch = self.args.per_device_train_batch_size
            return StratifiedLengthSampler([len(ids) for ids in dataset["input_ids"]], self.objective.classes,
                                           micro_batch, self.args.seed,
                                           micro_batch * self.args.gradient_accumulation_steps)

        def _get_train_sampler(self, train_dataset=None):
            """transformers' hook for the training sampler (no public one exists; tests/train/test_batching.py fails
            loudly if transformers renames it or stops using it)."""
            sampler = self.sampler_for(train_dataset if train_dataset is not None else self.train_dataset)
            return sampler if sampler is not None else super()._get_train_sampler(train_dataset)

        def training_order(self) -> list[int]:
            """The training rows' indices in the order the first epoch draws them."""
            sampler = self.sampler_for(self.train_dataset)
            return list(sampler) if sampler is not None else list(range(len(self.train_dataset)))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            o = self.objective
            batch = left_pad(inputs["input_ids"], inputs["attention_mask"], inputs["labels"], o.pad_id)
            logits = answer_logits(model, batch, o.prefix_ids if model.training else None)
            loss = classifier_loss(logits, batch, o.code_first_ids, o.name)
            return (loss, {"logits": logits}) if return_outputs else loss

    return StudioSFTTrainer
