"""TRL's SFTTrainer as the studio uses it: the trainer's settings from the run config (a pure function), and the
trainer class itself.

TRL 1.15 computes the SFT loss with a fused LM head whose kernel is written in Triton, which exists only for CUDA/XPU
(the CPU torch wheel ships no Triton): on a CPU the trainer crashes in its first step. Where that kernel cannot run,
this subclass computes the loss the way transformers' Trainer does, from the model's own logits: the same mean
negative log-likelihood over the label tokens (for a classifier, just the code and end-of-turn tokens, so the full
logits are small). Where the kernel can run (the GPU path, Unsloth included), TRL's own code runs unchanged.
"""

from __future__ import annotations

from pathlib import Path

from studio.config import RunConfig


def sft_args(config: RunConfig, *, output_dir: str | Path, optim: str, dtype: str, device: str,
             total_steps: int) -> dict:
    """The keyword arguments of TRL's ``SFTConfig`` for a run: the trainer's settings from the run config, the
    effective optimizer and dtype, checkpoints about every tenth of the run unless ``save_steps`` says otherwise."""
    train = config.train
    return dict(
        output_dir=str(output_dir), per_device_train_batch_size=train.per_device_train_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps, warmup_steps=train.warmup_steps,
        max_steps=train.max_steps, num_train_epochs=train.num_train_epochs, learning_rate=train.learning_rate,
        optim=optim, lr_scheduler_type=train.lr_scheduler_type, weight_decay=train.weight_decay,
        logging_steps=train.logging_steps, seed=train.seed, packing=train.packing,
        max_length=config.model.max_seq_length, save_strategy="steps",
        save_steps=train.save_steps or max(1, total_steps // 10), save_total_limit=2, report_to="none",
        disable_tqdm=True, bf16=dtype == "bfloat16", fp16=dtype == "float16", use_cpu=device == "cpu",
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
        gradient_checkpointing=False,  # the model loader applies the run's checkpointing choice itself
    )


def fused_loss_available(device_type: str) -> bool:
    try:
        from trl.trainer import utils
    except ImportError:
        return False
    kernel_missing = getattr(utils, "_ChunkedLogProbFunction", object) is None
    return device_type in ("cuda", "xpu") and not kernel_missing


def sft_trainer_class():
    """Built on first use: importing trl must wait until unsloth (if used) has patched it."""
    from transformers import Trainer
    from trl import SFTTrainer

    class StudioSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if fused_loss_available(inputs["input_ids"].device.type):
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            inputs = {**inputs, "use_cache": False}
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return StudioSFTTrainer
