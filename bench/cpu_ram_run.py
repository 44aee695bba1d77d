"""The process's memory (RSS) over a run's first training steps on the CPU, in the studio's own batch order, against
the same steps with the largest micro-batch taken first: whether a whole run's peak is more than its largest step's
(memory freed by earlier, smaller steps that the largest one cannot reuse), and whether taking the largest first
brings it back to one step's peak (studio/estimate/ram.py).

    python bench/cpu_ram_run.py --data ../shared/datasets/financial_phrasebank.csv --json out.json

Each variant runs in its own process (peak RSS only grows), training in a worker thread as the web app does (or the
main thread, ``--main-thread``): the embedded model, LoRA r=16 on the 7 projections, float32 weights, bfloat16
autocast, the loss at the last position, AdamW on the adapter; random token ids of each micro-batch's real widths.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STEPS = r"""
import json, resource, sys, threading, time
import psutil, torch
sys.path.insert(0, {repo!r})
from studio.machine import import_stack
import_stack()
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from studio.models.embedded import embedded_model_dir
widths, batch = {widths!r}, {batch}
process = psutil.Process()
rss = []

def train():
    model = AutoModelForCausalLM.from_pretrained(str(embedded_model_dir(log=lambda m: None)), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, task_type="CAUSAL_LM", target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    rss.append(process.memory_info().rss / 2**30)
    for width in widths:
        ids = torch.randint(100, 40000, (batch, width))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=1)
        out.logits.float().logsumexp(-1).sum().backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        rss.append(process.memory_info().rss / 2**30)

started = time.time()
if {main_thread}:
    train()
else:
    worker = threading.Thread(target=train)
    worker.start()
    worker.join()
print(json.dumps({{"rss_gb": [round(x, 3) for x in rss], "seconds": round(time.time() - started, 1),
                  "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}}))
"""


def studio_widths(data: str, steps: int) -> tuple[list[int], int]:
    """The padded widths of the first ``steps`` micro-batches in the studio's order for this file's defaults, and
    the largest of all (the defaults' micro-batch on this machine)."""
    from studio.data.order import stratified_order
    from studio.data.prepare import prepare_data
    from studio.door.labels import config_for_file
    from studio.estimate.plan import preview
    from studio.models.loading import load_tokenizer

    config = config_for_file(data)
    tokenizer = load_tokenizer(config.model.name, log=lambda m: None)
    prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length)
    lengths = [len(row["input_ids"]) for row in prepared.tokenized(tokenizer)]
    planned = preview(config, len(lengths), lengths, prepared.train_classes()).config.train
    batch = planned.per_device_train_batch_size
    order = stratified_order(lengths, prepared.train_classes(), batch, planned.seed,
                             batch * planned.gradient_accumulation_steps)
    widths = [max(lengths[i] for i in order[s:s + batch]) for s in range(0, len(order), batch)]
    return widths, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=30, help="the first steps of the run's order")
    parser.add_argument("--main-thread", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from studio.estimate.model_shape import known_shape
    from studio.estimate.ram import estimate_cpu_ram

    widths, batch = studio_widths(args.data, args.steps)
    largest = max(widths)
    first = widths[:args.steps]
    ranked = sorted(widths)
    timing = [ranked[int(q * (len(ranked) - 1))] for q in (0.25, 0.25, 0.75, 0.75)]  # the time budget's timed steps
    variants = {"the run's order, then its largest micro-batch": first + [largest],
                "the largest micro-batch first, then the run's order": [largest] + first,
                "the budget's timed steps, the largest, the run's order": timing + [largest] + first,
                "the largest, the budget's timed steps, the run's order": [largest] + timing + first}
    shape = known_shape("embedded/SmolLM2-135M-Instruct")
    out = {"data": args.data, "batch": batch, "largest_width": largest, "widths": first,
           "thread": "main" if args.main_thread else "worker",
           "one_step_estimate_gb": estimate_cpu_ram(shape, batch, [largest] * batch, largest, False).peak_gb,
           "variants": {}}
    for name, sequence in variants.items():
        code = STEPS.format(repo=str(REPO), widths=sequence, batch=batch, main_thread=args.main_thread)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out["variants"][name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, json.dumps({k: v for k, v in out["variants"][name].items() if k != "rss_gb"}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
