"""Training on several GPUs through Hugging Face Accelerate (DDP), which TRL's trainer supports directly.

``accelerate launch --num_processes N -m studio train --config run.json`` starts N copies of the same command; each
finds its rank in the environment (RANK, WORLD_SIZE, LOCAL_RANK). Rank 0 alone creates and writes the run folder
(run.json, status, metrics, log, checkpoints, adapter); the others train their share of every batch and write nothing.
One optimizer step then covers batch × grad_accum × N rows, and that number is shown and saved.
"""

from __future__ import annotations

# Joining and leaving the ranks' process group: studio.machine (batch predictions shard over the same ranks).


def broadcast(value):
    """Rank 0's ``value`` on every rank."""
    from accelerate.utils import broadcast_object_list  # (only with several processes)

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank when it is True on one of them (a stop request must stop all ranks at the same step, or
    the others would wait forever for the stopped one)."""
    import torch  # (torch: not at the page's start)
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def agreed_min(value: int) -> int:
    """The smallest of the ranks' ``value``s, on every rank (the ranks' re-planned last steps: they must stop
    together)."""
    import torch  # (torch: not at the page's start)
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    box = torch.tensor([int(value)], device=device)
    dist.all_reduce(box, op=dist.ReduceOp.MIN)
    return int(box.item())
