"""The classifier's training loss, computed only where it is read.

A classifier's loss is about the answer: the label code's tokens after the prompt. So the batch is re-padded on the
left (every row's answer then ends at the last position), the model returns logits for the last few positions only
(``logits_to_keep``), never sequence × vocabulary: the LM head is 20–30% of a small model's compute. Two objectives:

- ``next_token``: the usual next-token loss over the answer's tokens (the code, end-of-turn), over the whole
  vocabulary: the model learns to *write* the code, so generation, GGUF and Ollama answer with it.
- ``codes``: cross-entropy over the K classes at the answer's first position: the softmax over the codes' first
  tokens, the way the scorer normalises them. It learns the decision directly.
- ``codes+next_token`` (the default): both, summed.

The shared prompt prefix (chat template + rubric, the same in every row) can be run once per micro-batch and its
keys/values broadcast to every row (``share_prefix``): the same numbers (gradients included) for a fraction of the
compute when the rubric is long. It needs the model's own forward to take a cache in training (transformers + peft
in one process).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

OBJECTIVES = ["codes+next_token", "next_token", "codes"]
IGNORE = -100


@dataclass
class AnswerBatch:
    """A batch re-padded on the left: ``ids``/``mask``/``positions`` (B, T) and ``targets`` (B, T) = the label of the
    next token at each position (IGNORE where there is none)."""

    ids: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor
    keep: int  # the last ``keep`` positions hold every answer position


def left_pad(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, pad_id: int) -> AnswerBatch:
    """Move each row's tokens to the right end (TRL pads on the right); targets are the labels shifted by one."""
    b, t = input_ids.shape
    lengths = attention_mask.sum(dim=1)
    shift = (t - lengths).unsqueeze(1)  # how far each row moves right
    cols = torch.arange(t, device=input_ids.device).unsqueeze(0)
    source = (cols - shift).clamp(min=0)  # for each new column, the old column it takes
    valid = cols >= shift
    ids = torch.where(valid, input_ids.gather(1, source), torch.full_like(input_ids, pad_id))
    mask = valid.long()
    shifted = torch.full_like(labels, IGNORE)
    shifted[:, :-1] = labels[:, 1:]  # the target of position i is the label of token i + 1
    targets = torch.where(valid, shifted.gather(1, source), torch.full_like(labels, IGNORE))
    # An answer is at the end of its row: keep the positions from the earliest answer position onwards.
    answered = (targets != IGNORE).any(dim=0)
    first = int(answered.nonzero()[0]) if answered.any() else t - 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return AnswerBatch(ids, mask, positions, targets, keep=t - first)


def answer_logits(model, batch: AnswerBatch, prefix_ids: list[int] | None = None) -> torch.Tensor:
    """Logits (B, keep, V) of the last ``batch.keep`` positions; with ``prefix_ids``, the shared prefix runs once."""
    if prefix_ids:
        shared = _shared_prefix_logits(model, batch, prefix_ids)
        if shared is not None:
            return shared
    return model(input_ids=batch.ids, attention_mask=batch.mask, position_ids=batch.positions, use_cache=False,
                 logits_to_keep=batch.keep).logits


def _shared_prefix_logits(model, batch: AnswerBatch, prefix_ids: list[int]) -> torch.Tensor | None:
    """The prefix once (batch 1, with gradients through the adapter), its keys/values broadcast to the batch (expand:
    no copy), then every row's own tokens after it. None when a row does not start with the prefix."""
    from transformers import DynamicCache  # (after unsloth's patches)

    p, (b, t) = len(prefix_ids), batch.ids.shape
    prefix = torch.tensor([prefix_ids], device=batch.ids.device)
    lengths = batch.mask.sum(dim=1)
    if int(lengths.min()) <= p:
        return None
    starts = t - lengths  # left-padded: row i's tokens begin at starts[i]
    cols = starts.unsqueeze(1) + torch.arange(p, device=batch.ids.device).unsqueeze(0)
    if not bool((batch.ids.gather(1, cols) == prefix).all()):
        return None
    # Each row's suffix, left-padded: the padding sits between the shared prefix and the row's own tokens, and the
    # explicit position ids and mask make that padding invisible.
    width = int((lengths - p).max())
    suffix_ids, suffix_mask = batch.ids[:, t - width:], batch.mask[:, t - width:].clone()
    suffix_mask[(torch.arange(width, device=batch.ids.device).unsqueeze(0) < (width - (lengths - p)).unsqueeze(1))] = 0
    positions = (p + suffix_mask.cumsum(dim=1) - 1).clamp(min=p)
    cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).past_key_values
    expanded = DynamicCache(ddp_cache_data=[(layer.keys.expand(b, -1, -1, -1), layer.values.expand(b, -1, -1, -1))
                                            for layer in cache.layers])
    mask = torch.cat([torch.ones((b, p), dtype=suffix_mask.dtype, device=suffix_mask.device), suffix_mask], dim=1)
    keep = min(batch.keep, width)
    return model(input_ids=suffix_ids, attention_mask=mask, position_ids=positions, past_key_values=expanded,
                 use_cache=True, logits_to_keep=keep).logits


def classifier_loss(logits: torch.Tensor, batch: AnswerBatch, code_first_ids: list[int],
                    objective: str = "codes+next_token") -> torch.Tensor:
    """The loss of one micro-batch (a mean: the trainer divides by the accumulation steps itself)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)} (got {objective!r})")
    keep = logits.shape[1]
    targets = batch.targets[:, -keep:]
    answered = targets != IGNORE
    logits = logits.float()
    loss = logits.new_zeros(())
    if "next_token" in objective:
        loss = loss + F.cross_entropy(logits[answered], targets[answered])
    if "codes" in objective:
        # The answer's first position in each row: the first target that is not ignored.
        first = answered.int().argmax(dim=1)
        rows = torch.arange(logits.shape[0], device=logits.device)
        first_logits = logits[rows, first]  # (B, V)
        codes = torch.tensor(code_first_ids, device=logits.device)
        first_targets = targets[rows, first]
        classes = (first_targets.unsqueeze(1) == codes.unsqueeze(0)).int().argmax(dim=1)
        loss = loss + F.cross_entropy(first_logits[:, codes], classes)
    return loss
