"""Where a run's GPU memory goes, part by part, on the backend a run uses: the model loaded as the worker loads it
(Unsloth where installed), then Val A scored the way the periodic evaluation scores it, at several scoring batches,
each with the peak reserved memory beyond what the loaded model holds; and whether the forward honours
``logits_to_keep`` (the scorer asks for the last position's logits only). Prints one JSON line.

    python3 bench/device/memory_parts.py --data financial_phrasebank.csv --four-bit false
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--four-bit", default="false", choices=["true", "false"])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--batches", default="256,128,64,32")
    args = parser.parse_args()
    from studio.config import RunConfig
    from studio.models.loading import choose_backend

    backend = choose_backend("auto")
    if backend.name == "unsloth":
        import unsloth  # noqa: F401 (before transformers, as the worker does)
    import torch

    from studio.data.prepare import prepare_data
    from studio.evaluate.evaluation import make_scorer
    from studio.models.loading import load_for_training

    config = RunConfig().replace({"data": {"path": args.data}, "model": {"load_in_4bit": args.four_bit}})
    loaded, _ = load_for_training(config.model, config.lora, config.train, backend, log=lambda m: None)
    model, tokenizer = loaded.model, loaded.tokenizer
    prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length)
    texts = list(prepared.split.val_a["text"])[: args.rows]
    torch.cuda.synchronize()
    held = torch.cuda.memory_reserved() / GIB
    out = {"backend": backend.name, "four_bit": loaded.load_in_4bit, "model_reserved_gb": round(held, 3),
           "rows": len(texts), "scoring": []}
    probe = make_scorer(model, tokenizer, prepared, batch_size=8)
    try:
        out["prefix_cache_works"] = probe._cache_works()  # False: every row's whole prompt runs (Unsloth)
    except Exception as exc:
        out["prefix_cache_works"] = repr(exc)[:200]
    out["prompt_tokens_mean"] = round(sum(len(probe.prompt_ids(t)) for t in texts) / len(texts), 1)
    ids = torch.tensor([probe.prompt_ids(texts[0])], device=model.device)
    with torch.inference_mode():
        out["logits_shape_with_keep_1"] = list(model(input_ids=ids, logits_to_keep=1).logits.shape)
    model.train()
    for batch in [int(b) for b in args.batches.split(",")]:
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        base = torch.cuda.memory_reserved()
        torch.cuda.reset_peak_memory_stats()
        scorer = make_scorer(model, tokenizer, prepared, batch_size=batch)
        scorer.score(texts)
        torch.cuda.synchronize()
        out["scoring"].append({"batch": batch, "peak_reserved_over_model_gb": round(
            (torch.cuda.max_memory_reserved() - base) / GIB, 3), "peak_allocated_gb": round(
            torch.cuda.max_memory_allocated() / GIB, 3)})
        model.train()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
