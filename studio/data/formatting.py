"""Rows → training examples and inference prompts, through the tokenizer's own chat template.

Instruct models: system = the rubric, user = the text, assistant = the label code only (the guide, §6D).
Base models without a chat template: the guide's Alpaca template with the code + EOS as the response.

One tokenization for everything: the trainer gets rows already tokenized here (``training_ids``), with the prompt's
ids exactly as scoring, predict, the Playground, the server and the export check read them (``encode_prompt``), so
no backend tokenizes the training text its own way (Unsloth's "double BOS" guess included) and no row is trained in
a context it is not scored in.
"""

from __future__ import annotations

from studio.errors import StudioError

PROMPT_FORMATS = ["auto", "chat", "alpaca"]
ALPACA_PROMPT = """Below is an instruction that describes a task, paired with an input that provides further context. \
Write a response that appropriately completes the request.

### Instruction:
{}

### Input:
{}

### Response:
"""
# Tokens kept free for the code, end-of-turn and EOS markers when fitting long texts.
ANSWER_MARGIN = 8
ENCODE_CHUNK = 4096
END_MARKERS = 2  # end-of-turn token + newline after the code (ChatML), or EOS (Alpaca)


def resolve_prompt_format(tokenizer, requested: str = "auto") -> str:
    if requested not in PROMPT_FORMATS:
        raise StudioError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)} (got '{requested}').")
    has_template = bool(getattr(tokenizer, "chat_template", None)) if tokenizer is not None else True
    if requested == "chat" and not has_template:
        raise StudioError("This model's tokenizer has no chat template, so the chat format is not available. "
                          "Use prompt_format 'alpaca' (or 'auto'), or pick an Instruct model.")
    if requested == "auto":
        return "chat" if has_template else "alpaca"
    return requested


def messages(rubric: str, text: str) -> list[dict]:
    return [{"role": "system", "content": rubric}, {"role": "user", "content": text}]


def render_prompt(tokenizer, rubric: str, text: str, fmt: str) -> str:
    """The exact prompt string after which the model writes the code (used by scoring, predict, sanity check)."""
    if fmt == "chat":
        return tokenizer.apply_chat_template(messages(rubric, text), tokenize=False, add_generation_prompt=True)
    return ALPACA_PROMPT.format(rubric, text)


def fit_texts(tokenizer, texts: list[str], rubric: str, fmt: str, max_seq_length: int,
              code_tokens: int) -> tuple[list[str], list[int]]:
    """Truncate texts so prompt + code fit in ``max_seq_length`` tokens; returns (texts, each row's length in tokens
    once formatted: prompt + text + code + end-of-turn markers), the lengths the memory estimate needs."""
    overhead = len(tokenizer(render_prompt(tokenizer, rubric, "", fmt), add_special_tokens=False)["input_ids"])
    budget = max_seq_length - overhead - code_tokens - ANSWER_MARGIN
    if budget < 16:
        raise StudioError(
            f"The rubric and prompt template take {overhead} tokens, leaving {max(budget, 0)} of max_seq_length="
            f"{max_seq_length} for the text. Shorten the rubric or raise max_seq_length.")
    unique = list(dict.fromkeys(texts))  # oversampled training sets repeat rows: tokenize each text once
    fitted = {}
    for start in range(0, len(unique), ENCODE_CHUNK):  # in chunks: token lists of 200k rows at once take GBs
        chunk = unique[start:start + ENCODE_CHUNK]
        for text, ids in zip(chunk, tokenizer(chunk, add_special_tokens=False)["input_ids"]):
            cut = tokenizer.decode(ids[:budget]).rstrip() if len(ids) > budget else text
            fitted[text] = (cut, overhead + min(len(ids), budget) + code_tokens + END_MARKERS)
    return [fitted[t][0] for t in texts], [fitted[t][1] for t in texts]


SENTINEL = "\u2063studio-text\u2063"  # an invisible separator that no chat template produces


def encode_prompt(tokenizer, text: str, fmt: str) -> list[int]:
    """Token ids of prompt text as training and scoring see it: chat templates write their own special tokens; the
    Alpaca text gets the model's BOS, if it has one."""
    return list(tokenizer(text, add_special_tokens=fmt == "alpaca")["input_ids"])


def training_ids(tokenizer, rubric: str, text: str, code: str, fmt: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one training row: the prompt's ids as ``encode_prompt`` gives them (what the scorer
    feeds), then the answer as the template writes it (the code, the end-of-turn marker; Alpaca: the code and EOS);
    labels -100 over the prompt, so the loss covers the answer only."""
    prompt = render_prompt(tokenizer, rubric, text, fmt)
    prompt_ids = encode_prompt(tokenizer, prompt, fmt)
    if fmt == "chat":
        whole = tokenizer.apply_chat_template(messages(rubric, text) + [{"role": "assistant", "content": code}],
                                              tokenize=False)
    else:
        whole = prompt + code + (tokenizer.eos_token or "")
    whole_ids = encode_prompt(tokenizer, whole, fmt)
    if whole_ids[:len(prompt_ids)] == prompt_ids and len(whole_ids) > len(prompt_ids):
        answer = whole_ids[len(prompt_ids):]
    else:  # a template that renders the prompt alone differently: the answer tokenized on its own
        answer = list(tokenizer.encode(whole[len(prompt):] if whole.startswith(prompt) else code,
                                       add_special_tokens=False))
    return prompt_ids + answer, [-100] * len(prompt_ids) + answer


def prefix_ids(tokenizer, rubric: str, fmt: str) -> list[int]:
    """The tokens every prompt starts with (template + rubric, up to where the text begins)."""
    return encode_prompt(tokenizer, render_prompt(tokenizer, rubric, SENTINEL, fmt).split(SENTINEL)[0], fmt)


def answer_ids(tokenizer, rubric: str, fmt: str, code: str) -> list[int]:
    """A code's tokens as they follow the prompt (tokenised in context, so merges match training)."""
    prompt = render_prompt(tokenizer, rubric, "x", fmt)
    base, full = encode_prompt(tokenizer, prompt, fmt), encode_prompt(tokenizer, prompt + code, fmt)
    if full[: len(base)] == base and len(full) > len(base):
        return full[len(base):]
    return list(tokenizer.encode(code, add_special_tokens=False))


def answer_end_id(tokenizer, rubric: str, fmt: str, code: str) -> int | None:
    """The token that ends an answer after ``code`` as training writes it (end-of-turn; Alpaca: EOS), None when the
    template writes none: a code that is the start of another ('1' of '12') is scored with it, or it would carry the
    longer code's probability too."""
    ids, labels = training_ids(tokenizer, rubric, "x", code, fmt)
    answer = [t for t, lab in zip(ids, labels) if lab != -100]
    code_ids = answer_ids(tokenizer, rubric, fmt, code)
    return answer[len(code_ids)] if answer[:len(code_ids)] == code_ids and len(answer) > len(code_ids) else None
