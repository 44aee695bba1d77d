"""Training speed on a GPU, one variant per process (so unsloth's patches never leak into the plain variant):

  studio    the studio engine: start_training() and its worker thread, exactly as the UI starts it
  notebook  the guide's notebook code as written: FastLanguageModel.from_pretrained + get_peft_model + SFTTrainer
            (its SFTConfig values; TRL 1.15 names: processing_class, max_length)
  plain     transformers + peft (+ bitsandbytes 4-bit), gradient checkpointing, the same LoRA and trainer settings

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
        return prepared.examples()
    return [{"text": tokenizer.apply_chat_template(e["prompt"] + e["completion"], tokenize=False)}
            for e in prepared.examples()]


def run_studio(model_dir: str, bits: int, steps: int, timer):
    from studio.config import RunConfig
    from studio.train.worker import start_training

    config = RunConfig().replace({
        "model": {"name": model_dir, "max_seq_length": 512, "load_in_4bit": bits == 4, "backend": "unsloth"},
        "lora": {"r": 16, "lora_alpha": 16, "target_modules": TARGETS, "use_gradient_checkpointing": "unsloth"},
        "data": {"balance": "natural"},
        "train": {"max_steps": steps, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                  "optim": "adamw_8bit", "save_steps": steps + 1}})
    job = start_training(config, tempfile.mkdtemp(prefix="studio-bench-"), callbacks=[timer])
    job.wait()
    if job.state != "finished":
        raise SystemExit(f"studio run {job.state}: {job.error}\n{job.log_tail(40)}")
    return job.model, job.backend


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
    parser.add_argument("--variant", choices=["studio", "notebook", "plain"], required=True)
    parser.add_argument("--bits", type=int, choices=[4, 16], required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--format", choices=["text", "prompt-completion"], default="text",
                        help="notebook variant: its own text field (default) or the studio's prompt-completion rows")
    parser.add_argument("--json")
    args = parser.parse_args()

    import torch

    if args.variant != "plain":
        import unsloth  # noqa: F401  (patches the stack before trl/peft are imported)
    timer = step_timer()
    run = {"studio": run_studio, "notebook": run_notebook, "plain": run_plain}[args.variant]
    torch.cuda.reset_peak_memory_stats()
    extra = {"fmt": args.format} if args.variant == "notebook" else {}
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
