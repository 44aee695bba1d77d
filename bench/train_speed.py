"""Training speed on a GPU, one variant per process (so unsloth's patches never leak into the plain variant):

  studio    the studio engine: start_training() and its worker thread, exactly as the UI starts it, with its default
            GPU recipe (--recipe default: auto micro-batch and checkpointing, the loss at the answer only) or the
            notebook's settings (--recipe notebook: batch 8 × 1, checkpointing "unsloth")
  notebook  the guide's notebook code as written: FastLanguageModel.from_pretrained + get_peft_model + SFTTrainer
            (its SFTConfig values; TRL 1.15 names: processing_class, max_length)
  plain     transformers + peft (+ bitsandbytes 4-bit), gradient checkpointing, the same LoRA and trainer settings
  loop      the reference: a plain PyTorch loop over PEFT (no Trainer), fused AdamW on the LoRA weights, checkpointing
            off, the same rows left-padded, logits at the answer positions only (--micro-batch rows per step)

    python bench/train_speed.py --variant loop --bits 16 --model /tmp/q15 --micro-batch 32
    python bench/train_speed.py --variant studio --bits 16 --model /tmp/q15 --epoch-rows 3000   # Start → adapter

Same rows (the sample data, chat-formatted: rubric + post + code, realistic length), same LoRA (r=16, alpha 16, all 7
projections), batch 8 × 1, adamw_8bit, lr 2e-4, max_seq_length 512, the same step timer (a TrainerCallback that
synchronises CUDA at every step end). Warm-up steps excluded; the median of the rest is reported.

    python bench/train_speed.py --variant studio --bits 4 --model /tmp/q05 --json out.json

MFU = 6 × (matmul parameters) × (non-padding tokens per step) / step time / (bf16 matmul TFLOP/s measured in the
same process on an 8192³ product). LoRA's own FLOPs and gradient-checkpointing recompute are not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # our `studio`, never the one unsloth's wheel installs

import studio  # noqa: E402

assert Path(studio.__file__).resolve().parent == REPO / "studio", studio.__file__

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def step_timer():
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.tokens, self._t, self._seen = [], [], None, 0

        def on_step_begin(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self._t = time.perf_counter()
            self._seen = state.num_input_tokens_seen or 0

        def on_step_end(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self._t)
            self.tokens.append((state.num_input_tokens_seen or 0) - self._seen)

    return StepTimer()


def profiled(timer, out: str, warmup: int):
    """The step timer, plus torch.profiler over 3 steps after the warm-up: where a step's time goes (GPU kernels by
    total time, and the count of kernel launches), written as a table to ``out``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    class Profiled(type(timer)):
        def on_step_begin(self, args, state, control, **kwargs):
            if len(self.times) == warmup:
                self.prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
                self.prof.__enter__()
            super().on_step_begin(args, state, control, **kwargs)

        def on_step_end(self, args, state, control, **kwargs):
            super().on_step_end(args, state, control, **kwargs)
            if len(self.times) == warmup + 3 and getattr(self, "prof", None):
                torch.cuda.synchronize()
                self.prof.__exit__(None, None, None)
                events = self.prof.key_averages()
                launches = sum(e.count for e in events if e.key.startswith(("cudaLaunchKernel", "cuLaunchKernel")))
                cuda_ms = sum(e.self_device_time_total for e in events) / 1000 / 3
                Path(out).write_text(f"3 steps: {launches / 3:.0f} kernel launches and {cuda_ms:.1f} ms of GPU "
                                     f"kernels per step; step times {self.times[-3:]}\n\n"
                                     + events.table(sort_by="self_cuda_time_total", row_limit=40))
                self.prof = None

    fresh = Profiled()
    return fresh


def sft_args(out_dir: str, steps: int, bits: int):
    from trl import SFTConfig

    # The guide's notebook SFTConfig, with batch 8 × 1 for the benchmark and max_length for TRL 1.15.
    return SFTConfig(per_device_train_batch_size=8, gradient_accumulation_steps=1, warmup_steps=5, max_steps=steps,
                     learning_rate=2e-4, optim="adamw_8bit", lr_scheduler_type="linear", weight_decay=0.001,
                     logging_steps=1, seed=3407, output_dir=out_dir, report_to="none", dataset_text_field="text",
                     max_length=512, packing=False, bf16=True, include_num_input_tokens_seen="non_padding",
                     save_strategy="no", disable_tqdm=True)


def text_rows(tokenizer, fmt: str = "text") -> list[dict]:
    """The studio's own chat-formatted rows: as one text field (prompt + code + end of turn, loss on every token, as
    the notebook trains), or as the studio's prompt-completion records (loss on the code only)."""
    from studio.config import DataRecipe
    from studio.data.prepare import prepare_data

    prepared = prepare_data(DataRecipe(balance="natural"), tokenizer, 512)
    if fmt == "prompt-completion":
        return prepared.tokenized(tokenizer)
    return chat_texts(tokenizer, prepared)


def chat_texts(tokenizer, prepared) -> list[dict]:
    """Each row as the notebook trains it: one text, prompt and code through the chat template."""
    from studio.data.formatting import messages

    return [{"text": tokenizer.apply_chat_template(messages(prepared.rubric, t) + [
        {"role": "assistant", "content": prepared.codes[lb]}], tokenize=False)}
        for t, lb in zip(prepared.train["text"], prepared.train["label"])]


def studio_config(model_dir: str, bits: int, recipe: str, micro_batch: int | None = None, data: str | None = None):
    from studio.config import RunConfig

    config = RunConfig().replace({
        "model": {"name": model_dir, "max_seq_length": 512, "load_in_4bit": bits == 4},
        "lora": {"r": 16, "lora_alpha": 16, "target_modules": TARGETS},
        "data": {"balance": "natural", **({"path": data} if data else {})}})
    if recipe == "notebook":
        config = config.replace({"lora": {"use_gradient_checkpointing": "unsloth"},
                                 "train": {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                                           "optim": "adamw_8bit", "learning_rate": 2e-4}})
    if micro_batch:
        config.train.per_device_train_batch_size = micro_batch
    return config


def run_studio(model_dir: str, bits: int, steps: int, timer, recipe: str = "default", micro_batch: int | None = None,
               optim: str | None = None):
    from studio.train.worker import start_training

    config = studio_config(model_dir, bits, recipe, micro_batch).replace({"train": {
        "max_steps": steps, "save_steps": steps + 1, "eval_steps": 0, "early_stopping_patience": 0,
        **({"optim": optim} if optim else {})}})
    job = start_training(config, tempfile.mkdtemp(prefix="studio-bench-"), callbacks=[timer])
    job.wait()
    if job.state != "finished":
        raise SystemExit(f"studio run {job.state}: {job.error}\n{job.log_tail(40)}")
    return job.model, {**job.backend, "resolved": job.run.record().get("resolved")}


def run_loop(model_dir: str, bits: int, steps: int, timer, micro_batch: int = 32):
    """The reference loop; fills ``timer`` with the same step times and tokens as the Trainer variants."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16) if bits == 4 else None
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, quantization_config=quant,
                                                 device_map={"": 0}, attn_implementation="sdpa")
    if bits == 4:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules=TARGETS, task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, fused=True)
    rows = []
    for example in text_rows(tokenizer, "prompt-completion"):
        prompt = tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True,
                                             return_dict=True)["input_ids"]
        rows.append((list(full), len(prompt)))
    pad = tokenizer.pad_token_id or 0
    for step in range(steps):
        batch = [rows[(step * micro_batch + i) % len(rows)] for i in range(micro_batch)]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((micro_batch, width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        targets = torch.full_like(ids, -100)
        for i, (row, prompt_len) in enumerate(batch):
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
            targets[i, width - len(row) + prompt_len - 1:width - 1] = torch.tensor(row[prompt_len:])
        keep = int((targets != -100).any(0).float().argmax().item())
        ids, mask, targets = ids.cuda(), mask.cuda(), targets.cuda()
        torch.cuda.synchronize()
        started = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=width - keep).logits.float()
        tail = targets[:, keep:]
        loss = torch.nn.functional.cross_entropy(logits[tail != -100], tail[tail != -100])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        timer.times.append(time.perf_counter() - started)
        timer.tokens.append(int(mask.sum()))
    return model, {"name": f"plain PyTorch loop + PEFT, micro-batch {micro_batch}"}


def epoch_wall_time(variant: str, model_dir: str, bits: int, rows: int) -> dict:
    """Seconds from Start to the adapter saved, for one epoch over ``rows`` rows of the sample data (repeated, each
    copy numbered): the studio's defaults, or the notebook's code and settings."""
    import csv

    from studio.config import SAMPLE_DATA

    with open(SAMPLE_DATA, encoding="utf-8", newline="") as fh:
        sample = list(csv.DictReader(fh))
    path = Path(tempfile.mkdtemp(prefix="epoch-")) / "rows.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(rows):
            row = sample[i % len(sample)]
            writer.writerow([f"{row['text']} ({i // len(sample) + 1})", row["label"]])
    started = time.perf_counter()
    if variant == "studio":
        from studio.train.worker import start_training

        config = studio_config(model_dir, bits, "default", data=str(path)).replace(
            {"train": {"num_train_epochs": 1.0}})
        job = start_training(config, tempfile.mkdtemp(prefix="studio-epoch-"))
        job.wait()
        if job.state != "finished":
            raise SystemExit(f"studio run {job.state}: {job.error}\n{job.log_tail(40)}")
        facts = job.run.record()
        return {"seconds": round(time.perf_counter() - started, 1), "steps": job.run.status().get("step"),
                "resolved": facts.get("resolved"), "rows": rows}
    from unsloth import FastLanguageModel

    from datasets import Dataset
    from trl import SFTTrainer

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=model_dir, max_seq_length=512, dtype=None,
                                                         load_in_4bit=bits == 4)
    model = FastLanguageModel.get_peft_model(model, r=16, target_modules=TARGETS, lora_alpha=16, lora_dropout=0,
                                             bias="none", use_gradient_checkpointing="unsloth", random_state=3407)
    from studio.config import DataRecipe
    from studio.data.prepare import prepare_data

    prepared = prepare_data(DataRecipe(path=str(path), balance="natural", val_fraction=0.05), tokenizer, 512)
    dataset = Dataset.from_list(chat_texts(tokenizer, prepared))
    args = sft_args(tempfile.mkdtemp(), -1, bits)
    args.per_device_train_batch_size, args.gradient_accumulation_steps, args.num_train_epochs = 2, 4, 1.0
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, args=args)
    trainer.train()
    model.save_pretrained(tempfile.mkdtemp(prefix="notebook-adapter-"))
    return {"seconds": round(time.perf_counter() - started, 1), "steps": trainer.state.global_step, "rows": rows}


def run_notebook(model_dir: str, bits: int, steps: int, timer, fmt: str = "text"):
    from unsloth import FastLanguageModel  # first, as the notebook does

    from datasets import Dataset
    from trl import SFTTrainer

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=model_dir, max_seq_length=512, dtype=None,
                                                         load_in_4bit=bits == 4)
    model = FastLanguageModel.get_peft_model(model, r=16, target_modules=TARGETS, lora_alpha=16, lora_dropout=0,
                                             bias="none", use_gradient_checkpointing="unsloth", random_state=3407,
                                             use_rslora=False, loftq_config=None)
    dataset = Dataset.from_list(text_rows(tokenizer, fmt))
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset,
                         args=sft_args(tempfile.mkdtemp(), steps, bits), callbacks=[timer])
    trainer.train()
    return model, {"name": f"notebook (unsloth, {fmt})"}


def run_plain(model_dir: str, bits: int, steps: int, timer):
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16) if bits == 4 else None
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, quantization_config=quant,
                                                 device_map={"": 0})
    if bits == 4:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none",
                                             target_modules=TARGETS, task_type="CAUSAL_LM"))
    dataset = Dataset.from_list(text_rows(tokenizer))
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset,
                         args=sft_args(tempfile.mkdtemp(), steps, bits), callbacks=[timer])
    trainer.train()
    return model, {"name": "transformers+peft"}


def bf16_peak_tflops() -> float:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12


def matmul_params(model_dir: str) -> int:
    """Parameters that take part in matmuls: everything but the input embedding, unless it is tied to lm_head."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    h, i, L = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    kv = c.num_key_value_heads * (h // c.num_attention_heads)
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i
    return L * per_layer + c.vocab_size * h  # + lm_head (the tied embedding used as the output projection)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["studio", "notebook", "plain", "loop"], required=True)
    parser.add_argument("--recipe", choices=["default", "notebook"], default="default",
                        help="studio variant: its default GPU recipe, or the notebook's settings")
    parser.add_argument("--micro-batch", type=int, help="rows per step (loop: default 32; studio: instead of auto)")
    parser.add_argument("--epoch-rows", type=int, help="time one epoch over this many rows, Start to adapter saved")
    parser.add_argument("--profile", help="write a torch.profiler table of 3 steps here (studio variant)")
    parser.add_argument("--optim", help="studio variant: this optimizer instead of the config's")
    parser.add_argument("--bits", type=int, choices=[4, 16], required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--format", choices=["text", "prompt-completion"], default="text",
                        help="notebook variant: its own text field (default) or the studio's prompt-completion rows")
    parser.add_argument("--json")
    args = parser.parse_args()

    import torch

    import importlib.util

    if args.variant not in ("plain", "loop") and importlib.util.find_spec("unsloth"):
        import unsloth  # noqa: F401  (patches the stack before trl/peft are imported)
    if args.epoch_rows:
        result = {"variant": args.variant, "bits": args.bits, "epoch": epoch_wall_time(args.variant, args.model,
                                                                                        args.bits, args.epoch_rows),
                  "device": torch.cuda.get_device_name(0)}
        print(json.dumps(result), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return 0
    timer = step_timer()
    run = {"studio": run_studio, "notebook": run_notebook, "plain": run_plain, "loop": run_loop}[args.variant]
    torch.cuda.reset_peak_memory_stats()
    extra = ({"fmt": args.format} if args.variant == "notebook" else
             {"recipe": args.recipe, "micro_batch": args.micro_batch, "optim": args.optim} if args.variant == "studio"
             else
             {"micro_batch": args.micro_batch or 32} if args.variant == "loop" else {})
    if args.profile:
        timer = profiled(timer, args.profile, args.warmup)
    _, backend = run(args.model, args.bits, args.steps, timer, **extra)
    peak_reserved = torch.cuda.max_memory_reserved() / 2**30
    times, tokens = timer.times[args.warmup:], timer.tokens[args.warmup:]
    median = statistics.median(times)
    tokens_per_step = statistics.mean(tokens)
    peak = bf16_peak_tflops()
    mfu = 6 * matmul_params(args.model) * tokens_per_step / median / (peak * 1e12)
    from importlib import metadata

    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "unsloth", "bitsandbytes"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    result = {"variant": args.variant, "bits": args.bits, "backend": backend.get("name"), "steps": args.steps,
              "recipe": args.recipe if args.variant == "studio" else None, "optim": args.optim,
              "resolved": backend.get("resolved"), "micro_batch": args.micro_batch,
              "measured_steps": len(times), "median_step_s": round(median, 4),
              "tokens_per_step": round(tokens_per_step, 1), "tokens_per_s": round(tokens_per_step / median, 1),
              "peak_reserved_gib": round(peak_reserved, 3), "bf16_peak_tflops": round(peak, 1),
              "mfu": round(mfu, 4), "device": torch.cuda.get_device_name(0), "versions": versions}
    print(json.dumps(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
