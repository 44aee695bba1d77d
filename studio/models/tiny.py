"""A tiny random Qwen2 model with a real byte-level BPE tokenizer and a ChatML chat template.

No hub is reachable in tests, CI or on the GPU machine, so tests, benchmarks and device runs build their own
model: the same code path as a real Qwen checkpoint (Qwen2 architecture, ChatML template), just small.
``build_tiny_model(dir, hidden_size=896, ...)`` with real dimensions gives a random-init model of a real shape.
"""

from __future__ import annotations

from pathlib import Path

# Qwen2.5 configs, for random-init models of the real shape (no weights travel to the GPU machine).
QWEN_SHAPES = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936),
    "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, vocab_size=151936),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    """Training text for the tokenizer: the sample dataset and rubric, so common words get their own tokens."""
    assets = Path(__file__).resolve().parents[2] / "assets"
    lines = []
    for name in ("sample_forum_posts.csv", "sample_rubric.txt"):
        path = assets / name
        if path.exists():
            lines.extend(path.read_text(encoding="utf-8").splitlines())
    lines.extend(["system", "user", "assistant", "RQ", "O", "Rules Question", "Other", "spam", "ham"])
    return lines


def build_tokenizer(vocab_size: int = 1024):
    from tokenizers import (  # (the tests' tiny model only)
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(out_dir: str | Path, *, vocab_size: int = 1024, hidden_size: int = 64,
                     num_hidden_layers: int = 2, num_attention_heads: int = 4, num_key_value_heads: int = 2,
                     intermediate_size: int = 128, initializer_range: float = 0.2, seed: int = 0,
                     tokenizer=None, architecture: str = "qwen2", dtype: str = "float32",
                     tie_word_embeddings: bool = True) -> Path:
    """Write a random-init Qwen2 causal LM + tokenizer to ``out_dir`` (loadable with from_pretrained).

    ``architecture`` "llama" gives SmolLM2's architecture (pair it with SmolLM2's tokenizer: transformers picks
    the tokenizer class from the model type). ``initializer_range`` 0.2 (not Qwen's 0.02): with tied embeddings
    behind a final RMSNorm, a 64-wide model
    initialised at 0.02 cannot produce logits above ~1.3, so no LoRA adapter could learn a task. Use 0.02 for
    random models of real shapes (speed and memory figures).
    """
    import torch  # (torch: not at the page's start)
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    tokenizer = tokenizer or build_tokenizer(vocab_size)
    config_class, model_class = {"qwen2": (Qwen2Config, Qwen2ForCausalLM),
                                 "llama": (LlamaConfig, LlamaForCausalLM)}[architecture]
    config = config_class(
        vocab_size=max(vocab_size, len(tokenizer)), hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size, max_position_embeddings=2048, tie_word_embeddings=tie_word_embeddings,
        initializer_range=initializer_range,
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    torch.set_default_dtype(getattr(torch, dtype))  # built in its dtype at once (a 7B shape in float32 is 30 GB)
    try:
        model = model_class(config)
    finally:
        torch.set_default_dtype(torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_qwen_shape(out_dir: str | Path, shape: str = "0.5b") -> Path:
    """A random-init Qwen2.5 model of a real shape (bf16, Qwen's 0.02 init) with the studio's small tokenizer."""
    return build_tiny_model(out_dir, tokenizer=build_tokenizer(4096), initializer_range=0.02, dtype="bfloat16",
                            **QWEN_SHAPES[shape])
