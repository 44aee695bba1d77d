"""Scoring speed, three ways, in one process on one device: constrained scoring with the rubric's KV cache reused,
constrained scoring with plain batching (the whole prompt every row), and greedy generation (the guide's
do_sample=False, small max_new_tokens), batched and one row at a time as the guide's notebook does. Rows are the
sample data's Val A with its rubric.

    python bench/scoring_speed.py                      # embedded SmolLM2-135M-Instruct, CPU
    python bench/scoring_speed.py --model Qwen/Qwen2.5-0.5B-Instruct --rows 256 --batch-size 32
    python bench/scoring_speed.py --random-qwen 0.5b   # random-init Qwen2.5-0.5B shape (no weights needed)

Prints a Markdown table and one JSON line (for docs/benchmarks.md). Warm-up batches are excluded.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

def load(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available() and args.device != "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    if args.random_qwen:
        import tempfile

        from studio.models.tiny import build_qwen_shape

        folder = build_qwen_shape(tempfile.mkdtemp(prefix="qwen-shape-"), args.random_qwen)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        name = f"random-init Qwen2.5-{args.random_qwen} shape"
    else:
        from studio.models.loading import resolve_source

        source = resolve_source(args.model)
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        name = args.model
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to("cuda" if cuda else "cpu").eval(), tokenizer, name, "cuda" if cuda else "cpu"


def timed(fn, texts, batch_size):
    import torch

    fn(texts[:batch_size])  # warm-up: kernels, allocator, the prefix cache
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(texts)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return len(texts) / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:SmolLM2-135M-Instruct")
    parser.add_argument("--random-qwen", choices=["0.5b", "1.5b"])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--single-rows", type=int, default=32, help="rows for the one-row-at-a-time generate")
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto")
    args = parser.parse_args(argv)

    import torch

    from studio.config import DataRecipe
    from studio.data.prepare import prepare_data
    from studio.classifier.scoring import LabelScorer

    model, tokenizer, name, device = load(args)
    prepared = prepare_data(DataRecipe(), tokenizer, 512)
    texts = list(prepared.split.val_a["text"]) + list(prepared.split.train["text"])
    texts = (texts * (args.rows // len(texts) + 1))[: args.rows]

    def scorer(reuse):
        return LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format,
                           batch_size=args.batch_size, reuse_prefix=reuse)

    reuse, plain, single = scorer(True), scorer(False), scorer(False)
    single.batch_size = 1
    few = texts[: min(len(texts), args.single_rows)]
    results = {
        "scoring, rubric KV reused": timed(reuse.score, texts, args.batch_size),
        "scoring, plain batching": timed(plain.score, texts, args.batch_size),
        f"generate (greedy, max_new_tokens={args.max_new_tokens})":
            timed(lambda t: plain.generate(t, max_new_tokens=args.max_new_tokens), texts, args.batch_size),
        "generate one row at a time (the guide's notebook)":
            timed(lambda t: single.generate(t, max_new_tokens=args.max_new_tokens), few, 1),
    }
    prompt_tokens = sum(len(reuse.prompt_ids(t)) for t in texts) / len(texts)
    gen = list(results.values())[2]
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else (platform.processor() or "CPU") + \
        f" ({torch.get_num_threads()} threads)"
    print(f"\n{name} on {device_name}: {len(texts)} rows, batch {args.batch_size}, "
          f"{prompt_tokens:.0f} prompt tokens/row ({len(reuse.prefix_ids)} shared rubric tokens)\n")
    print("| method | rows/s | × generate |\n|---|---|---|")
    for method, rate in results.items():
        print(f"| {method} | {rate:.1f} | {rate / gen:.1f}× |")
    record = {"model": name, "device": device_name, "rows": len(texts), "batch_size": args.batch_size,
              "prompt_tokens_per_row": round(prompt_tokens, 1), "shared_prefix_tokens": len(reuse.prefix_ids),
              "rows_per_s": {k: round(v, 2) for k, v in results.items()}, "torch": torch.__version__}
    print("\n" + json.dumps(record))
    return record


if __name__ == "__main__":
    main()
