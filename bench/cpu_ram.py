"""Peak memory (RSS) of one LoRA training step on the CPU, for micro-batches of B rows of L tokens, with and without
gradient checkpointing: the measurements behind studio/estimate/ram.py (the auto micro-batch on a CPU).

    python bench/cpu_ram.py --json docs/device-results/cpu-ram-smollm2.json

Each point runs in its own process (peak RSS only grows) with the studio's CPU settings: float32 weights, bfloat16
autocast where the CPU computes bfloat16 (float32 compute elsewhere; ``--compute`` picks), LoRA r=16 on the 7
projections, the loss read at the last position only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POINTS = [(16, 128, False), (16, 256, False), (16, 512, False), (4, 512, False), (8, 256, False), (16, 512, True)]
# float32 compute holds 2.3x the activations: 16 x 512 without checkpointing would not fit this machine's 24 GiB
POINTS_FLOAT32 = [(16, 128, False), (16, 256, False), (4, 512, False), (8, 256, False), (16, 512, True)]

STEP = r"""
import json, resource, sys
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
sys.path.insert(0, {repo!r})
from studio.models.embedded import embedded_model_dir
b, L, ckpt, bf16 = {b}, {L}, {ckpt}, {bf16}
torch.set_num_threads(1)  # memory, not speed: leave the other cores alone
model = AutoModelForCausalLM.from_pretrained(str(embedded_model_dir(log=lambda m: None)), dtype=torch.float32)
if ckpt:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={{"use_reentrant": False}})
    model.enable_input_require_grads()
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, task_type="CAUSAL_LM", target_modules=[
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
model.train()  # checkpointing applies in training mode only
ids = torch.randint(100, 40000, (b, L))
for _ in range(2):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=1)
    out.logits.float().logsumexp(-1).sum().backward()
print(json.dumps({{"batch": b, "length": L, "checkpointing": ckpt, "compute": "bfloat16" if bf16 else "float32",
                  "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json")
    parser.add_argument("--skip", type=int, default=0, help="start at this point (a resumed measurement)")
    parser.add_argument("--compute", choices=["auto", "bfloat16", "float32"], default="auto",
                        help="auto: what the studio computes in on this CPU (bfloat16 where it has it)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from studio.estimate.model_shape import known_shape
    from studio.estimate.ram import estimate_cpu_ram
    from studio.models.loading import cpu_has_bf16

    bf16 = cpu_has_bf16() if args.compute == "auto" else args.compute == "bfloat16"

    shape = known_shape("embedded/SmolLM2-135M-Instruct")
    results = []
    for b, length, ckpt in (POINTS if bf16 else POINTS_FLOAT32)[args.skip:]:
        out = subprocess.run([sys.executable, "-c", STEP.format(repo=str(REPO), b=b, L=length, ckpt=ckpt, bf16=bf16)],
                             capture_output=True, text=True, check=True)
        point = json.loads(out.stdout.strip().splitlines()[-1])
        point["estimate_gb"] = estimate_cpu_ram(shape, b, [length] * b, length, ckpt, bfloat16=bf16).peak_gb
        point["ratio"] = round(point["estimate_gb"] / point["peak_gb"], 3)
        results.append(point)
        print(json.dumps(point), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
