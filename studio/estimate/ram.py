"""Training on a CPU: the process's peak memory (RAM), so that the auto micro-batch fits the machine. Without gradient
checkpointing every layer keeps its activations for the backward pass: on this project's 2-core machine a micro-batch
of 16 rows of 512 tokens took 14.2 GiB with the embedded 135M model, which a laptop with 8 or 16 GiB does not have.

The formula is fitted on measured peaks (``bench/cpu_ram.py``; docs/benchmarks.md): SmolLM2-135M, LoRA r=16 on the 7
projections, bfloat16 autocast over float32 weights, torch 2.13 on the CPU:
- fixed: 0.9 GiB (interpreter, torch, allocator) + 6 bytes per parameter (float32 weights and their bfloat16 copies);
- per token of the micro-batch and per layer: 4.15 bytes × (8 × hidden + 4.5 × intermediate) (the layer's inputs,
  projections, MLP activations and their bfloat16 copies);
- attention: 1.5 bytes per head, layer, token and key;
- with checkpointing: each layer keeps 17 bytes × hidden per token (its input and a few float32 vectors around it) and
  one layer's activations are alive at a time (16 rows of 512 tokens: 4.3 GiB instead of 13.8).
- float32 compute (a CPU without AVX-512, where the run has no bfloat16 autocast): 4 bytes per parameter (no bfloat16
  copies), and 2.3 times the activations above, 4.4 times with checkpointing (measured on an AVX2-only AMD EPYC).

A whole run peaks at its widest step only because that step comes first (studio.data.order.widest_step_first); at its
place in the order, memory kept from the narrower steps before it added 1.0-2.5 GiB. What the process holds beyond a
bare training process when the model loads (the web app, kept models) is added (docs/benchmarks.md, "CPU: training
memory over a run"). What glibc's heaps keep differs from process to process: a run's peak can still come out above
this estimate (by up to 1.2 GiB, bfloat16 runs measured since the widest step comes first). Before the float32 term a
CPU without AVX-512 ran 1.3-1.5 GiB above it (two runs); with it, four whole runs peaked 2.6-2.75 GiB under it.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.estimate.model_shape import ModelShape
from studio.machine import machine_ram_gb

GIB = 2**30
FIXED_GB = 0.9
BYTES_PER_PARAM = 6
BYTES_PER_PARAM_FLOAT32 = 4
# float32 activations against bfloat16 autocast's (bench/cpu_ram.py --compute float32; with checkpointing one point)
FLOAT32_ACTIVATIONS = 2.3
FLOAT32_CHECKPOINTED_ACTIVATIONS = 4.4
# A training process's resident memory once the model is loaded: the interpreter and the stack (the weights are
# mapped from their file and counted when first used). Measured: a CLI run with the embedded model 0.63 GiB, the stack
# alone 0.47. What a process holds beyond it at that point (the web app) stays for the whole run.
BARE_PROCESS_AT_LOAD_GB = 0.65


@dataclass
class RamEstimate:
    peak_gb: float
    total_gb: float | None
    tokens: int  # in the largest micro-batch
    longest: int  # its longest row

    @property
    def share(self) -> float | None:
        return self.peak_gb / self.total_gb if self.total_gb else None

    def summary(self) -> str:
        where = f" of {self.total_gb:.0f} GiB" if self.total_gb else ""
        return (f"about {self.peak_gb:.1f} GiB{where} at the peak (the largest micro-batch: {self.tokens} tokens, "
                f"rows up to {self.longest})")


def estimate_cpu_ram(shape: ModelShape, batch: int, lengths: list[int] | None, max_seq_length: int,
                     checkpointing: bool, total_gb: float | None = None, held_gb: float | None = None,
                     bfloat16: bool = True) -> RamEstimate:
    """The peak memory of training ``shape`` on the CPU with micro-batches of ``batch`` rows (grouped by length, so
    the largest micro-batch holds the longest rows, padded to the longest). ``held_gb``: the process's resident
    memory with the model loaded, where a run measures it: what it holds beyond a bare training process at that point
    (the web app, models kept for evaluation) is added, as it stays for the whole run. ``bfloat16``: the run computes
    in bfloat16 (autocast on a CPU with AVX-512), else in float32."""
    rows = sorted(min(n, max_seq_length) for n in lengths) if lengths else [max_seq_length]
    longest = rows[-1]
    tokens = min(batch, max(1, len(rows))) * longest
    layer_bytes = 4.15 * (8 * shape.hidden_size + 4.5 * shape.intermediate_size)  # per token
    attention = 1.5 * shape.num_attention_heads * longest  # per token
    layers = shape.num_hidden_layers
    if checkpointing:
        activations = tokens * (layers * 17 * shape.hidden_size + layer_bytes + attention)
    else:
        activations = tokens * layers * (layer_bytes + attention)
    if not bfloat16:
        activations *= FLOAT32_CHECKPOINTED_ACTIVATIONS if checkpointing else FLOAT32_ACTIVATIONS
    peak = FIXED_GB + ((BYTES_PER_PARAM if bfloat16 else BYTES_PER_PARAM_FLOAT32) * shape.params + activations) / GIB
    if held_gb is not None:
        peak += max(0.0, held_gb - BARE_PROCESS_AT_LOAD_GB)
    return RamEstimate(round(peak, 2), total_gb, tokens, longest)


def ram_share(shape: ModelShape, lengths: list[int] | None, max_seq_length: int, bfloat16: bool = True):
    """``fits(micro_batch, checkpointing, four_bit) -> share of this machine's RAM`` for the recipe (a CPU loads no
    4-bit weights); None when the machine's memory is unknown. ``bfloat16``: the run computes in it (else float32)."""
    total = machine_ram_gb()
    if not total:
        return None

    def share(batch: int, checkpointing: str, four_bit: bool = False) -> float:
        return estimate_cpu_ram(shape, batch, lengths, max_seq_length, checkpointing not in ("false", ""),
                                total, bfloat16=bfloat16).share

    return share
