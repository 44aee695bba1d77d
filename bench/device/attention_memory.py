"""Why micro-batches of padded long rows reserve more GPU memory than the per-token estimate says: one training
micro-batch on the backend a run uses (the model loaded as the worker loads it, the studio's loss: rows re-padded on
the left, the answer's logits, backward through the LoRA adapter), for rows of one length and for rows of mixed
lengths with the same longest row, at several lengths, under the default attention kernels and with some kernels
ruled out, beside the studio's estimate of the same micro-batch. Prints one JSON line per measurement. (Unsloth
compiles each decoder layer: a wrapper around ``scaled_dot_product_attention`` that counts calls makes every call
recompile, so none is used.)

    python3 bench/device/attention_memory.py --model smollm2 --lengths 128,256,512 --batch 64

``--model``: a folder, or ``smollm2`` / ``0.5b`` for a random-init model of that shape (memory does not depend on
the weights' values).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

GIB = 2**30
SMOLLM2 = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
               num_key_value_heads=3, vocab_size=49152)


def build_model(which: str) -> str:
    from studio.models.tiny import QWEN_SHAPES, build_tiny_model, build_tokenizer

    out = Path(tempfile.mkdtemp(prefix=f"shape-{which}-"))
    if which == "smollm2":
        build_tiny_model(out, tokenizer=build_tokenizer(4096), initializer_range=0.02, dtype="bfloat16",
                         architecture="llama", **SMOLLM2)
    else:
        build_tiny_model(out, tokenizer=build_tokenizer(4096), initializer_range=0.02, dtype="bfloat16",
                         **QWEN_SHAPES[which])
    return str(out)


def micro_batch(lengths: list[int], vocab: int, pad: int, device: str):
    """TRL's collated micro-batch: rows padded on the right, the last 3 tokens of each row its answer."""
    import torch

    width = max(lengths)
    gen = torch.Generator().manual_seed(0)
    ids = torch.full((len(lengths), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(100, vocab - 100, (n,), generator=gen)
        mask[i, :n] = 1
        labels[i, n - 3:n] = ids[i, n - 3:n]
    return ids.to(device), mask.to(device), labels.to(device)


def measure(model, lengths: list[int], vocab: int, pad: int, kernels) -> dict:
    import contextlib

    import torch
    from torch.nn.attention import sdpa_kernel

    from studio.train.objective import answer_logits, classifier_loss, left_pad

    ids, mask, labels = micro_batch(lengths, vocab, pad, "cuda")
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    base_reserved, base_allocated = torch.cuda.memory_reserved(), torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    context = sdpa_kernel(kernels) if kernels else contextlib.nullcontext()
    try:
        with context, torch.autocast("cuda", dtype=torch.bfloat16):
            batch = left_pad(ids, mask, labels, pad)
            logits = answer_logits(model, batch)
            loss = classifier_loss(logits, batch, [101, 102, 103])
        loss.backward()
        torch.cuda.synchronize()
        out = {"peak_reserved_over_model_gb": (torch.cuda.max_memory_reserved() - base_reserved) / GIB,
               "peak_allocated_over_model_gb": (torch.cuda.max_memory_allocated() - base_allocated) / GIB}
    except RuntimeError as exc:
        out = {"error": str(exc).splitlines()[0][:300]}
    model.zero_grad(set_to_none=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--lengths", default="128,256,512")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--checkpointing", default="false")
    parser.add_argument("--kernels", default="default,no-math,efficient")
    args = parser.parse_args()
    from studio.config import RunConfig
    from studio.models.loading import choose_backend

    backend = choose_backend("auto")
    if backend.name == "unsloth":
        import unsloth  # noqa: F401 (before transformers, as the worker does)
    from torch.nn.attention import SDPBackend

    from studio.estimate.model_shape import read_shape
    from studio.estimate.vram import estimate_vram
    from studio.models.loading import load_for_training

    name = args.model if Path(args.model).exists() else build_model(args.model)
    lengths = [int(n) for n in args.lengths.split(",")]
    config = RunConfig().replace({"model": {"name": name, "load_in_4bit": "false",
                                            "max_seq_length": max(lengths) + 8},
                                  "lora": {"use_gradient_checkpointing": args.checkpointing}})
    loaded, _ = load_for_training(config.model, config.lora, config.train, backend, log=lambda m: None)
    model, tokenizer = loaded.model, loaded.tokenizer
    model.train()
    shape = read_shape(name)[0]
    vocab, pad = shape.vocab_size, tokenizer.pad_token_id
    kernel_sets = {"default": None, "no-math": [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                                                SDPBackend.CUDNN_ATTENTION],
                   "efficient": [SDPBackend.EFFICIENT_ATTENTION], "math": [SDPBackend.MATH]}
    results = []
    for longest in lengths:
        for mode in ("one length", "mixed"):
            rows = [longest] * args.batch if mode == "one length" else \
                [max(8, round(longest * (0.2 + 0.8 * i / (args.batch - 1)))) for i in range(args.batch)]
            full = estimate_vram(config.replace({"train": {"per_device_train_batch_size": args.batch}}), shape,
                                 lengths=rows, backend=backend.name, load_in_4bit=False)
            estimate = sum(v for k, v in full.parts.items()  # the micro-batch's parts, as measured: over the model
                           if k.startswith(("activations", "the answer's logits", "step workspace", "rows of")))
            for kernel in args.kernels.split(","):
                out = {"model": args.model, "backend": backend.name, "checkpointing": args.checkpointing,
                       "batch": args.batch, "longest": longest, "rows": mode, "kernels": kernel,
                       "real_tokens": sum(rows), "estimate_micro_batch_gb": round(estimate, 3),
                       **measure(model, rows, vocab, pad, kernel_sets[kernel])}
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}),
                      flush=True)
                results.append(out)


if __name__ == "__main__":
    main()
