"""Where the scorer's time goes on a GPU: rows/s with the rubric's KV reused against plain batching, over batch sizes
and batch-width roundings, the host's share (prompt rendering and tokenizing), and torch.profiler over one pass.

    python3 bench/device/scoring_profile.py MODEL_FOLDER OUT.txt [--batches 256,512,1024] [--widths 16,8,1]
                                            [--rows 2048] [--plain] [--profile] [--exact]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from studio.config import DataRecipe  # noqa: E402
from studio.data.prepare import prepare_data  # noqa: E402
from studio.classifier import scoring  # noqa: E402
from studio.classifier.scoring import LabelScorer  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("out")
parser.add_argument("--batches", default="256,512,1024")
parser.add_argument("--widths", default=str(scoring.WIDTH_MULTIPLE))
parser.add_argument("--rows", type=int, default=1024)
parser.add_argument("--plain", action="store_true", help="plain batching too (the whole prompt every row)")
parser.add_argument("--profile", action="store_true")
parser.add_argument("--exact", action="store_true", help="reuse vs plain in float32 too (the bf16 paths differ by "
                                                         "rounding alone)")
args = parser.parse_args()

tokenizer = AutoTokenizer.from_pretrained(args.folder)
model = AutoModelForCausalLM.from_pretrained(args.folder, dtype=torch.bfloat16).cuda().eval()
prepared = prepare_data(DataRecipe(), tokenizer, 512)
texts = list(prepared.split.val_a["text"]) + list(prepared.split.train["text"])
texts = (texts * (args.rows // len(texts) + 1))[:args.rows]
lines = [f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, {len(texts)} rows, codes {prepared.codes}"]


def scorer(batch, reuse=True):
    return LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format, batch_size=batch,
                       reuse_prefix=reuse)


probe = scorer(256)
started = time.perf_counter()
ids = probe.prompts_ids(texts)
host = time.perf_counter() - started
lines.append(f"host: rendering + tokenizing {len(texts)} prompts: {host:.3f} s ({len(texts) / host:.0f} rows/s); "
             f"{sum(map(len, ids)) / len(ids):.1f} tokens/row, {len(probe.prefix_ids)} shared")
for reuse in ([True, False] if args.plain else [True]):
    for width in [int(w) for w in args.widths.split(",")]:
        scoring.WIDTH_MULTIPLE = width
        for batch in [int(b) for b in args.batches.split(",")]:
            s = scorer(batch, reuse)
            reference = s.score(texts[:batch]).probs
            torch.cuda.synchronize()
            rates = []
            for _ in range(2):
                started = time.perf_counter()
                s.score(texts)
                torch.cuda.synchronize()
                rates.append(len(texts) / (time.perf_counter() - started))
            lines.append(f"reuse={reuse} width_multiple={width} batch={batch}: {max(rates):.0f} rows/s "
                         f"(runs {', '.join(f'{r:.0f}' for r in rates)}); peak allocated "
                         f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
            print(lines[-1], flush=True)
            torch.cuda.reset_peak_memory_stats()
plain = scorer(64, reuse=False).score(texts[:256]).probs
fast = scorer(256).score(texts[:256]).probs
lines.append(f"reuse vs plain, bfloat16, largest difference in probabilities over 256 rows: "
             f"{abs(plain - fast).max():.2e}")
if args.exact:
    model = model.float()
    exact_plain = scorer(64, reuse=False).score(texts[:256]).probs
    exact_fast = scorer(256).score(texts[:256]).probs
    lines.append(f"reuse vs plain, float32, largest difference in probabilities over 256 rows: "
                 f"{abs(exact_plain - exact_fast).max():.2e}; bfloat16 plain vs float32 plain: "
                 f"{abs(plain - exact_plain).max():.2e}")
    model = model.to(torch.bfloat16)
if args.profile:
    scoring.WIDTH_MULTIPLE = int(args.widths.split(",")[0])
    s = scorer(512)
    s.score(texts[:512])
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        s.score(texts)
        torch.cuda.synchronize()
    lines.append(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=18))
    lines.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
Path(args.out).write_text("\n".join(lines))
print("\n".join(line for line in lines if "rows/s" in line or "difference" in line))
