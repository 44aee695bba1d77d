"""TRL's SFTTrainer, made to train on machines without a GPU.

TRL 1.15 computes the SFT loss with a fused LM head whose kernel is written in Triton, which exists only for CUDA/XPU
(the CPU torch wheel ships no Triton): on a CPU the trainer crashes in its first step. Where that kernel cannot run,
this subclass computes the loss the way transformers' Trainer does, from the model's own logits: the same mean
negative log-likelihood over the label tokens (for a classifier, just the code and end-of-turn tokens, so the full
logits are small). Where the kernel can run (the GPU path, Unsloth included), TRL's own code runs unchanged.
"""

from __future__ import annotations


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
