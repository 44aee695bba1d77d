"""Where the scorer's time goes on a GPU (rubric KV reused vs plain batching): torch.profiler over one pass."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from studio.config import DataRecipe  # noqa: E402
from studio.data.prepare import prepare_data  # noqa: E402
from studio.evaluate.scoring import LabelScorer  # noqa: E402

folder, out = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).cuda().eval()
prepared = prepare_data(DataRecipe(), tokenizer, 512)
texts = (list(prepared.split.val_a["text"]) + list(prepared.split.train["text"])) * 3
texts = texts[:1024]
lines = [f"codes {prepared.codes}"]
for reuse in (True, False):
    for batch in [int(b) for b in (sys.argv[3] if len(sys.argv) > 3 else "128,512").split(",")]:
        scorer = LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format,
                             batch_size=batch, reuse_prefix=reuse)
        lines.append(f"code token ids {scorer.code_ids}")
        scorer.score(texts[:batch])
        torch.cuda.synchronize()
        started = time.perf_counter()
        scorer.score(texts)
        torch.cuda.synchronize()
        lines.append(f"reuse={reuse} batch={batch}: {len(texts) / (time.perf_counter() - started):.0f} rows/s")
        if batch == 128 and "--profile" in sys.argv:
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                scorer.score(texts[:256])
                torch.cuda.synchronize()
            lines.append(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=14))
            lines.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
Path(out).write_text("\n".join(lines))
print("\n".join(lines[:1] + [x for x in lines if "rows/s" in x]))
