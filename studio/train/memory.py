"""A run's memory: the estimate for what is about to train (GPU, or RAM on a CPU) beside the measured peak
(memory.json), the guide's levers when it runs out, and the memory of a failed or replaced run given back."""

from __future__ import annotations

import gc
import sys
import traceback

from studio.config import RunConfig
from studio.estimate.model_shape import shape_from_config
from studio.estimate.ram import estimate_cpu_ram
from studio.estimate.vram import detect_gpu, estimate_vram
from studio.machine import machine_ram_gb, process_rss_gb
from studio.models.loading import cpu_computes_bf16

OOM_LEVERS = [
    "Lower per_device_train_batch_size (raise gradient_accumulation_steps to keep rows per step)",
    "Lower max_seq_length",
    "Use gradient checkpointing 'unsloth'",
    "Load the base in 4-bit (load_in_4bit true)",
    "Use optim adamw_8bit",
    "Use attention-only target modules (q_proj, k_proj, v_proj, o_proj)",
]


def estimate_for_run(config: RunConfig, loaded, backend: dict, lengths: list[int]):
    """(estimate dict for the record, the Estimate, the RAM estimate or None) for the loaded model and the real rows:
    the GPU's peak on a GPU; on a CPU the GPU figure stays for planning and the RAM is what matters."""
    device = backend["device"]
    gpu = detect_gpu() if device == "cuda" else None
    estimate = estimate_vram(config, shape_from_config(loaded.model.config, "the loaded model"), lengths=lengths,
                             backend=backend["name"], load_in_4bit=loaded.load_in_4bit, gpu_name=gpu and gpu[0],
                             gpu_total_gb=gpu and gpu[1])
    record, ram = estimate.to_dict(), None
    if device != "cuda":
        held = process_rss_gb()
        bf16 = cpu_computes_bf16(config.model)
        ram = estimate_cpu_ram(estimate.shape, config.train.per_device_train_batch_size, lengths,
                               config.model.max_seq_length, backend["gradient_checkpointing"] != "false",
                               machine_ram_gb(), held_gb=held, bfloat16=bf16)
        record["cpu_ram"] = {"peak_gb": ram.peak_gb, "total_gb": ram.total_gb, "held_at_load_gb": round(held, 3),
                             "compute": "bfloat16" if bf16 else "float32"}
    return record, estimate, ram


def measured_peak(device: str, gpu_in_use_at_start_gb: float, rss_records: list[float]) -> dict:
    """The run's measured peak: GPU memory reserved beyond what the process held at its start, or on a CPU the most
    RAM the process held by its last logged step (the OS's high-water mark, ``rss_peak_gb`` of the records)."""
    try:
        import torch  # (already loaded by the run; imported here so the record works without a GPU)

        if torch.cuda.is_available() and device == "cuda":
            peak = torch.cuda.max_memory_reserved() / 2**30
            return {"device": "cuda", "peak_reserved_gb": round(peak, 3),
                    "peak_allocated_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
                    "in_use_at_start_gb": gpu_in_use_at_start_gb,
                    "run_peak_reserved_gb": round(peak - gpu_in_use_at_start_gb, 3)}
        return {"device": "cpu", "peak_rss_gb": max(rss_records) if rss_records else None}
    except Exception as exc:
        return {"error": str(exc)}


def memory_record(estimate: dict | None, measured: dict, state: str) -> dict:
    record = {"estimate": estimate or {}, "measured": measured, "state": state}
    if estimate and measured.get("run_peak_reserved_gb"):
        record["measured_over_estimate"] = round(measured["run_peak_reserved_gb"] / estimate["peak_reserved_gb"], 3)
    return record


def reset_peak_memory() -> float:
    """Start the peak counter for this run; returns the GPU memory (GiB) already reserved by the process (models
    kept for evaluation or the playground), which the run's own peak is measured beyond."""
    import torch  # (the worker thread's first use of torch)

    if not torch.cuda.is_available():
        return 0.0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return round(torch.cuda.memory_reserved() / 2**30, 3)


def free_memory() -> None:
    """Give a failed or replaced run's GPU memory back. torch.compile's caches (Unsloth compiles each decoder layer)
    hold the modules they were traced on, so they are reset too."""
    try:
        dynamo = sys.modules.get("torch._dynamo")
        if dynamo is not None:
            dynamo.reset()
    except Exception:
        pass
    gc.collect()
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def drop_frames(exc: BaseException) -> None:
    """Clear the locals of every frame in the exception, its causes and contexts: they hold the model, the batch and
    the optimizer."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


def is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    return (torch is not None and isinstance(exc, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()
