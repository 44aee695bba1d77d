"""Label scoring: one forward pass per row over the chat-formatted prompt, reading the next-token log-probabilities
of the label codes (multi-token codes: the sum of their tokens' log-probabilities), normalised into one
probability per class. Always a valid label, deterministic, batched with left padding.

The rubric (system prompt) is the same for every row, so its key/value cache can be computed once and reused: each
batch only runs the row-specific suffix (the user turn and the assistant header). Rows are left-padded *between*
the shared prefix and their suffix, with explicit position ids, so padding never shifts a row's positions. That pays
on a CPU; on a GPU plain batching is faster (docs/benchmarks.md), so the default follows the device.

Multi-token codes (many classes: the labels' own words) are read from one more pass over their prefix tree
(``studio.classifier.code_tree``): all of them at once, whatever their number.

Generate mode (the guide's ``do_sample=False``, small ``max_new_tokens``) is here too, for comparison: its output is
parsed back to a code, and anything else is counted as invalid.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from studio.data.formatting import answer_end_id, answer_ids, encode_prompt, prefix_ids, render_prompt
from studio.classifier.candidates import INVALID
from studio.classifier.code_tree import CodeTree, code_paths, ended_where_prefix

TREE_CHECK_ATOL = 1.0  # log-probability: bfloat16 noise measured up to 0.3, a mask not applied 6.9-10.8
WIDTH_MULTIPLE = 1  # batch widths rounded up to this: no rounding (docs/benchmarks.md, "GPU: label scoring")


@dataclass
class Scores:
    labels: list[str]
    logprobs: np.ndarray  # (rows, classes): summed code-token log-probabilities
    probs: np.ndarray  # (rows, classes): softmax over the classes

    @property
    def predicted(self) -> list[str]:
        return [self.labels[i] for i in self.probs.argmax(axis=1)]


class LabelScorer:
    def __init__(self, model, tokenizer, codes: dict[str, str], rubric: str, prompt_format: str,
                 batch_size: int = 16, reuse_prefix: bool | None = None, autocast=None):
        """``reuse_prefix`` None: reuse the rubric's KV cache (faster on a CPU and a GPU: docs/benchmarks.md, "Label
        scoring"). ``autocast``: a torch dtype to compute in (bfloat16 on a CPU that has it: the live evaluations
        during training only), None for the weights' own dtype: a text's probability then does not depend on the
        other texts of its batch (float32 on a CPU; docs/benchmarks.md, "Same text, same probability")."""
        self.model, self.tokenizer = model, tokenizer
        self.autocast = autocast
        if reuse_prefix is None:
            reuse_prefix = True
        self.labels = list(codes)
        self.codes = codes
        self.rubric, self.fmt = rubric, prompt_format
        self.batch_size, self.reuse_prefix = batch_size, reuse_prefix
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.code_ids = ended_where_prefix([answer_ids(tokenizer, rubric, prompt_format, codes[lb])
                                           for lb in self.labels],
                                          answer_end_id(tokenizer, rubric, prompt_format, codes[self.labels[0]]))
        self.prefix_ids = prefix_ids(tokenizer, rubric, prompt_format)
        self.code_paths = code_paths(self.code_ids)
        self.tree = CodeTree(self.code_ids)
        self.tree_ok: bool | None = None  # the one-pass tree agrees with a pass per path (checked on the first batch)
        self.tree_gap: float | None = None  # their largest difference in log-probability, at that check
        self._prefix_cache = None
        self._cache_ok: bool | None = None  # some patched models (Unsloth) return legacy tuples, not a Cache

    def prompt_ids(self, text: str) -> list[int]:
        return encode_prompt(self.tokenizer, render_prompt(self.tokenizer, self.rubric, text, self.fmt), self.fmt)

    def prompts_ids(self, texts: list[str]) -> list[list[int]]:
        """Many prompts at once: rendered one by one, tokenised in one call (the fast tokenizer works in parallel:
        per-row calls took as long as a GPU's whole scoring pass)."""
        rendered = [render_prompt(self.tokenizer, self.rubric, t, self.fmt) for t in texts]
        return [list(ids) for ids in self.tokenizer(rendered, add_special_tokens=self.fmt == "alpaca")["input_ids"]]

    # ---- scoring ----------------------------------------------------------------------------------------------
    def _compute(self):
        """The compute settings of a scoring pass: the autocast dtype, and on a GPU attention kernels that need no
        per-shape planning (cuDNN's builds a plan for every new batch shape)."""

        stack = contextlib.ExitStack()
        if self.autocast is not None:
            stack.enter_context(torch.autocast(self.model.device.type, dtype=self.autocast))
        if self.model.device.type == "cuda":
            stack.enter_context(sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                                             SDPBackend.MATH]))
        return stack

    @torch.inference_mode()
    def score(self, texts: list[str], progress=None) -> Scores:
        """``progress(done, total)`` after every batch (the UI's and CLI's progress)."""
        with self._compute():
            return self._score(texts, progress)

    def _score(self, texts: list[str], progress=None) -> Scores:
        self.model.eval()
        rows = self.prompts_ids(texts)
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float64)
        p = len(self.prefix_ids)
        reuse = self.reuse_prefix and self._cache_works()
        shared = [i for i, ids in enumerate(rows) if reuse and ids[:p] == self.prefix_ids and len(ids) > p]
        alone = sorted(set(range(len(rows))) - set(shared))
        done = 0
        for group, prefix in ((shared, self.prefix_ids), (alone, [])):
            group = sorted(group, key=lambda i: len(rows[i]))  # rows of like length together: little padding
            for start in range(0, len(group), self.batch_size):
                batch = group[start:start + self.batch_size]
                out[batch] = self._score_batch([rows[i][len(prefix):] for i in batch], prefix)
                done += len(batch)
                if progress:
                    progress(done, len(rows))
        probs = torch.softmax(torch.from_numpy(out), dim=1).numpy()
        return Scores(self.labels, out, probs)

    def _cache_works(self) -> bool:
        if self._cache_ok is None:
            from transformers.cache_utils import Cache  # (after unsloth's patches)

            self._cache_ok = isinstance(self._prefix_kv(), Cache)
        return self._cache_ok

    def _prefix_kv(self):
        if self._prefix_cache is None:
            device = self.model.device
            ids = torch.tensor([self.prefix_ids], device=device)
            with self._compute():
                self._prefix_cache = self.model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
        return self._prefix_cache

    def _score_batch(self, suffixes: list[list[int]], prefix: list[int]) -> np.ndarray:
        device = self.model.device
        b, p = len(suffixes), len(prefix)
        width = -(-max(len(s) for s in suffixes) // WIDTH_MULTIPLE) * WIDTH_MULTIPLE  # few distinct shapes
        # Built on the host and sent at once (one copy per batch, not one per row).
        host_ids = np.full((b, width), self.pad_id, dtype=np.int64)
        host_mask = np.zeros((b, width), dtype=np.int64)
        for i, s in enumerate(suffixes):
            host_ids[i, width - len(s):] = s
            host_mask[i, width - len(s):] = 1
        ids, mask = torch.from_numpy(host_ids).to(device), torch.from_numpy(host_mask).to(device)
        positions = (p + mask.cumsum(1) - 1).clamp(min=p)
        cache = None
        if prefix:
            # A fresh cache per batch over the shared prefix, broadcast (expand: no copy) to the batch; the
            # forward appends each row's suffix into new tensors, so the prefix itself is never written.
            from transformers import DynamicCache  # (after unsloth's patches)

            shared = self._prefix_kv()
            cache = DynamicCache(ddp_cache_data=[(layer.keys.expand(b, -1, -1, -1),
                                                  layer.values.expand(b, -1, -1, -1)) for layer in shared.layers])
            mask = torch.cat([torch.ones((b, p), dtype=torch.long, device=device), mask], dim=1)
        # logits_to_keep: only the last position's logits, not (rows × tokens × vocab)
        result = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                            use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(result.logits[:, -1].float(), dim=-1)
        scores = torch.stack([first[:, ids_[0]] for ids_ in self.code_ids], dim=1)
        from transformers.cache_utils import Cache  # (after unsloth's patches)

        cache, last_pos = result.past_key_values, positions[:, -1]
        if self.tree.nodes and self.tree_ok is not False:
            cached = isinstance(cache, Cache)
            tree_scores = self._tree_pass(scores, cache, mask, last_pos) if cached else \
                self._tree_pass_whole(scores, ids, mask, positions)
            if self.tree_ok:
                return tree_scores.cpu().numpy()
            # First batch: the one-pass tree checked against a pass per path, once (a patched attention that drops
            # a custom mask would read wrong rows); the per-path passes stay the answer where they disagree.
            if cached:
                cache.crop(-len(self.tree.nodes))
            path_scores = self._path_passes(scores.clone(), cache, ids, mask, positions, last_pos)
            self.tree_gap = float((tree_scores - path_scores).abs().max())
            self.tree_ok = self.tree_gap <= TREE_CHECK_ATOL
            return path_scores.cpu().numpy()
        return self._path_passes(scores, cache, ids, mask, positions, last_pos).cpu().numpy()

    def _tree_pass(self, scores, cache, mask, last_pos):
        """Every multi-token code's later tokens in one pass: the prefix tree's nodes fed side by side, each seeing
        its row and its own ancestors only (a 4-D attention mask), at the position its depth gives."""
        device, b, tree = self.model.device, scores.shape[0], self.tree
        n = len(tree.nodes)
        ids = torch.tensor([tree.tokens] * b, device=device)
        seen = torch.cat([mask.bool()[:, None, None, :].expand(b, 1, n, mask.shape[1]),
                          torch.from_numpy(tree.sees).to(device)[None, None].expand(b, 1, n, n)], dim=3)
        positions = last_pos[:, None] + torch.from_numpy(tree.depths).to(device)[None]
        logits = self.model(input_ids=ids, attention_mask=self._additive(seen), position_ids=positions,
                            past_key_values=cache, use_cache=True, logits_to_keep=n).logits
        return self._read_tree(scores, logits)

    def _tree_pass_whole(self, scores, ids, mask, positions):
        """The same tree in one pass for models that return no Cache object (Unsloth's patched ones): each row's
        whole sequence, then the tree's nodes, under one 4-D mask (causal over the row's own tokens, each node its
        row and its ancestors; a padding position sees itself, so nothing divides by zero)."""
        device, b, tree = self.model.device, scores.shape[0], self.tree
        n, width = len(tree.nodes), ids.shape[1]
        keys = mask.bool()
        causal = torch.tril(torch.ones((width, width), dtype=torch.bool, device=device))
        rows = (causal[None] & keys[:, None, :]) | torch.eye(width, dtype=torch.bool, device=device)[None]
        top = torch.cat([rows, torch.zeros((b, width, n), dtype=torch.bool, device=device)], dim=2)
        bottom = torch.cat([keys[:, None, :].expand(b, n, width),
                            torch.from_numpy(tree.sees).to(device)[None].expand(b, n, n)], dim=2)
        seen = torch.cat([top, bottom], dim=1)[:, None]
        nodes = torch.tensor([tree.tokens] * b, device=device)
        depth = positions[:, -1:] + torch.from_numpy(tree.depths).to(device)[None]
        logits = self.model(input_ids=torch.cat([ids, nodes], dim=1), attention_mask=self._additive(seen),
                            position_ids=torch.cat([positions, depth], dim=1), use_cache=False,
                            logits_to_keep=n).logits
        return self._read_tree(scores, logits)

    def _additive(self, seen):
        """A 4-D mask as the attention adds it (0 where a position is seen, the dtype's lowest elsewhere), in the
        model's compute dtype: Unsloth's patched models refuse a boolean one (H100, CLINC150: a training run's first
        periodic evaluation failed on it), and eager attention adds the mask rather than selecting by it."""
        embeddings = getattr(self.model, "get_input_embeddings", None)  # never quantised: the compute dtype
        dtype = self.autocast or (embeddings().weight.dtype if embeddings else
                                  next(p.dtype for p in self.model.parameters() if p.is_floating_point()))
        return torch.zeros(seen.shape, dtype=dtype, device=seen.device).masked_fill(~seen, torch.finfo(dtype).min)

    def _read_tree(self, scores, logits):
        """The first tokens' scores plus each multi-token code's later tokens, read at its nodes' logits."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        out = scores.clone()
        for k, (nodes, targets) in self.tree.reads.items():
            out[:, k] += logp[:, nodes, targets].sum(dim=1)
        return out

    def _path_passes(self, scores, cache, ids, mask, positions, last_pos):
        from transformers.cache_utils import Cache  # (after unsloth's patches)

        device, b = self.model.device, scores.shape[0]
        for path, served in self.code_paths:
            # The rest of the multi-token codes under one path of the prefix tree, in one pass: on top of the row's
            # cache (then cropped back for the next path), or, for models that return no Cache object, as one pass
            # over the whole sequence.
            tail = torch.tensor([list(path)] * b, device=device)
            tail_mask = torch.cat([mask, torch.ones_like(tail)], dim=1)
            tail_pos = last_pos[:, None] + torch.arange(1, len(path) + 1, device=device)[None]
            if isinstance(cache, Cache):
                logits = self.model(input_ids=tail, attention_mask=tail_mask, position_ids=tail_pos,
                                    past_key_values=cache, use_cache=True, logits_to_keep=len(path)).logits
                cache.crop(-len(path))
            else:
                logits = self.model(input_ids=torch.cat([ids, tail], dim=1), attention_mask=tail_mask,
                                    position_ids=torch.cat([positions, tail_pos], dim=1), use_cache=False,
                                    logits_to_keep=len(path)).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for k in served:
                code = self.code_ids[k]
                targets = torch.tensor(code[1:], device=device)
                scores[:, k] += logp[:, torch.arange(len(code) - 1), targets].sum(dim=1)
        return scores

    # ---- generate mode ------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, texts: list[str], max_new_tokens: int = 8) -> tuple[list[str], list[str]]:
        """Greedy answers parsed back to labels (INVALID when they match no code); returns (labels, raw)."""
        self.model.eval()
        device = self.model.device
        eos = [self.tokenizer.eos_token_id] + ([self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
                                               if "<|im_end|>" in self.tokenizer.get_vocab() else [])
        labels, raw = [], []
        for start in range(0, len(texts), self.batch_size):
            rows = [self.prompt_ids(t) for t in texts[start:start + self.batch_size]]
            width = max(map(len, rows))
            ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows], device=device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      do_sample=False, pad_token_id=self.pad_id, eos_token_id=eos)
            for seq in out[:, width:]:
                text = self.tokenizer.decode(seq, skip_special_tokens=True)
                raw.append(text)
                labels.append(parse_answer(text, self.codes))
        return labels, raw


def parse_answer(text: str, codes: dict[str, str]) -> str:
    """Map a generated answer to a label: the code (or the label's name) as the first word, any case."""
    answer = text.strip().strip("`'\"*").strip()
    if not answer:
        return INVALID
    by_code = {c.lower(): lb for lb, c in codes.items()}
    by_label = {lb.lower(): lb for lb in codes}
    first_line = answer.splitlines()[0].strip().rstrip(".!:;,").strip()
    for key in (first_line.lower(),):
        if key in by_code:
            return by_code[key]
        if key in by_label:
            return by_label[key]
    first_word = re.split(r"[\s.,:;!]+", first_line)[0].lower()
    return by_code.get(first_word, INVALID)
