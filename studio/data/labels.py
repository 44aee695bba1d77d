"""Label codes: short outputs the model learns instead of long label names (the guide: `Rules Question → RQ`).

Short codes cost fewer tokens and give constrained scoring one clean decision; every output maps back to the
user's label. The token checks use the tokenizer the run will train with.
"""

from __future__ import annotations

import re

from studio.errors import StudioError

MAX_CODE_TOKENS = 3
SHORT_LABEL_CHARS = 4


def suggest_codes(labels: list[str]) -> dict[str, str]:
    """Label → short unique code. Labels that are already short (≤4 chars, one word) are kept as they are."""
    if all(len(lb) <= SHORT_LABEL_CHARS and " " not in lb for lb in labels):
        return {lb: lb for lb in labels}
    words = {lb: re.findall(r"[^\W_]+", lb) or [lb] for lb in labels}
    codes: dict[str, str] = {}
    for lb in labels:
        codes[lb] = _abbreviate(words[lb], 0)
    # Lengthen colliding codes, one more letter at a time, until all are unique.
    for extra in range(1, 12):
        counts: dict[str, int] = {}
        for c in codes.values():
            counts[c.lower()] = counts.get(c.lower(), 0) + 1
        clashes = [lb for lb, c in codes.items() if counts[c.lower()] > 1]
        if not clashes:
            break
        for lb in clashes:
            codes[lb] = _abbreviate(words[lb], extra)
    taken: set[str] = set()
    for lb in labels:  # last resort for labels that stay identical after abbreviation: number them
        code, n = codes[lb], 2
        while code.lower() in taken:
            code, n = f"{codes[lb]}{n}", n + 1
        codes[lb] = code
        taken.add(code.lower())
    return codes


def _abbreviate(words: list[str], extra: int) -> str:
    if len(words) == 1:
        word = words[0]
        return (word[: 1 + extra]).upper() if word.isascii() else word[: 1 + extra]
    initials = "".join(w[0] for w in words)
    return (initials + words[-1][1: 1 + extra]).upper()


def validate_codes(codes: dict[str, str], labels: list[str]) -> dict[str, str]:
    """Check a user-edited code table; returns the complete table (missing labels get suggested codes)."""
    unknown = [lb for lb in codes if lb not in labels]
    if unknown:
        raise StudioError(f"Label codes given for labels that are not in the data: {', '.join(map(repr, unknown))}. "
                          f"Labels are: {', '.join(map(repr, labels))}.")
    full = dict(codes)
    missing = [lb for lb in labels if lb not in full]
    if missing:
        suggested = suggest_codes(labels)
        taken = {c.lower() for c in full.values()}
        for lb in missing:
            code = suggested[lb]
            n = 2
            while code.lower() in taken:
                code, n = f"{suggested[lb]}{n}", n + 1
            full[lb] = code
            taken.add(code.lower())
    for lb, code in full.items():
        code = str(code)
        if not code.strip():
            raise StudioError(f"The code for '{lb}' is empty; give every label a short code such as 'RQ'.")
        if code != code.strip() or "\n" in code:
            raise StudioError(f"The code {code!r} for '{lb}' has spaces or line breaks at its ends; remove them.")
    seen: dict[str, str] = {}
    for lb, code in full.items():
        if code.lower() in seen:
            raise StudioError(f"Labels '{seen[code.lower()]}' and '{lb}' share the code '{code}'; codes must be "
                              "unique (ignoring case) so predictions map back to one label.")
        seen[code.lower()] = lb
    return {lb: full[lb] for lb in labels}


def code_token_ids(tokenizer, code: str) -> list[int]:
    """The token ids of a code as the model writes it at the start of its answer."""
    return list(tokenizer.encode(code, add_special_tokens=False))


def code_report(codes: dict[str, str], tokenizer=None) -> tuple[list[dict], list[str]]:
    """Rows for the label-code table (label, code, tokens, warnings) and table-wide warnings."""
    rows, warnings = [], []
    first_tokens: dict[int, list[str]] = {}
    for label, code in codes.items():
        row = {"label": label, "code": code, "tokens": None, "token_strings": None, "warnings": []}
        if tokenizer is not None:
            ids = code_token_ids(tokenizer, code)
            row["tokens"] = len(ids)
            row["token_strings"] = [tokenizer.decode([i]) for i in ids]
            if ids:
                first_tokens.setdefault(ids[0], []).append(code)
            if len(ids) > MAX_CODE_TOKENS:
                row["warnings"].append(f"'{code}' is {len(ids)} tokens long: shorter codes (1–2 tokens) train "
                                       "faster and bias the model less.")
        if len(label) > 2 * len(code) and label == code:
            row["warnings"].append("Long label used as its own code: consider a short code.")
        rows.append(row)
    for token, shared in first_tokens.items():
        if len(shared) > 1:
            warnings.append(
                f"Codes {', '.join(repr(c) for c in shared)} start with the same token "
                f"{tokenizer.decode([token])!r}: the model's first output token cannot tell them apart. Scoring "
                "still sums each code's tokens, but codes with distinct first tokens are more robust: rename one.")
    lowered = [c.lower() for c in codes.values()]
    for a in lowered:
        for b in lowered:
            if a != b and b.startswith(a):
                warnings.append(f"Code '{a}' is a prefix of '{b}': generated answers can be ambiguous; "
                                "prefer codes where none starts another.")
    for row in rows:
        warnings.extend(f"{row['label']}: {w}" for w in row["warnings"])
    return rows, warnings


def default_rubric(codes: dict[str, str]) -> str:
    """A plain instruction naming every code, used when the user has not written a rubric."""
    lines = "\n".join(f"- {code}: {label}" for label, code in codes.items())
    return ("Classify the text into exactly one of these categories. "
            f"Answer with the code only.\n{lines}")
