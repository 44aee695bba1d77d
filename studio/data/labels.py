"""Label codes: short outputs the model learns instead of long label names (the guide: `Rules Question → RQ`).

Short codes cost fewer tokens and give constrained scoring one clean decision; every output maps back to the
user's label. The token checks use the tokenizer the run will train with.
"""

from __future__ import annotations

import re

from studio.errors import StudioError

MAX_CODE_TOKENS = 3
SHORT_LABEL_CHARS = 4
WHOLE_WORD_CHARS = 14  # a one-word label up to this long may be its own code, when it is one token
# Short English words that start an answer on their own: as a code, one of them starts with a huge prior
# (docs/benchmarks.md, "Numbers the code relies on"). Compared ignoring case.
COMMON_WORDS = set("""a i o an as at be by do go he if in is it me my no of oh ok on or so to up us we am are but can
did for had has her him his how its may not now our out she the too two was way who why yes you all and any few get
got let new old one own per put say see set six ten use yet""".split()) - {"o"}  # 'O' is the guide's own code


def suggest_codes(labels: list[str], tokenizer=None) -> dict[str, str]:
    """Label → short unique code. Without a tokenizer: letters (the guide's 'Rules Question' → 'RQ'); labels that
    are already short (≤4 chars, one word) are kept as they are. With the tokenizer the model trains with, the same
    letters unless they are a common word (it would start with a huge prior) or over 2 tokens, and every code
    starting with its own token (so the model's first answer token decides): where letters collide, the label's own
    word ('neutral', 'negative' rather than 'NEU', 'NEG', which share their first token 'N')."""
    letters = _letter_codes(labels)
    if tokenizer is None:
        return letters
    return _token_codes(labels, letters, tokenizer)


def _letter_codes(labels: list[str]) -> dict[str, str]:
    if all(len(lb) <= SHORT_LABEL_CHARS and " " not in lb for lb in labels):
        return {lb: lb for lb in labels}
    words = {lb: _words(lb) for lb in labels}
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


def _words(label: str) -> list[str]:
    return re.findall(r"[^\W_]+", label) or [label]


def _candidates(label: str, letters: str, whole_first: bool) -> list[str]:
    """Codes for one label in order of preference: the guide's short letters (or, for a one-word label when
    ``whole_first``, the word itself), then the label's own word(s), then longer prefixes."""
    words = _words(label)
    out = [label] if len(label) <= SHORT_LABEL_CHARS and " " not in label else []
    if len(words) == 1 and len(label) <= WHOLE_WORD_CHARS:
        out += [label, letters] if whole_first else [letters, label]
    else:
        out.append(letters)
    content = [w for w in words if w.lower() not in COMMON_WORDS and w.lower() != "and"] or words
    if len(words) > 1:
        out.append("".join(w[0] for w in content).upper())
        if len(content[0]) <= WHOLE_WORD_CHARS:
            out.append(content[0])
    out += [content[0][:n].upper() for n in (2, 3, 4)]
    return list(dict.fromkeys(c for c in out if c.strip()))


def _token_codes(labels: list[str], letters: dict[str, str], tokenizer) -> dict[str, str]:
    # One-word labels whose first letters collide ('neutral', 'negative') keep their words: 'NEU' and 'NEG' carry
    # little meaning and may share a first token.
    initials = [lb[0].lower() for lb in labels if len(_words(lb)) == 1 and len(lb) > SHORT_LABEL_CHARS]
    whole_first = len(set(initials)) < len(initials)
    options = {}
    for lb in labels:
        scored = []
        for rank, code in enumerate(_candidates(lb, letters[lb], whole_first)):
            ids = code_token_ids(tokenizer, code)
            if ids:
                scored.append(((code.lower() in COMMON_WORDS, len(ids) > 2, rank, len(ids)), code, ids[0]))
        options[lb] = [(code, first) for _, code, first in sorted(scored)] or [(letters[lb], None)]
    chosen = {lb: 0 for lb in labels}

    def clashes() -> list[str]:
        seen: dict = {}
        for lb in labels:
            code, first = options[lb][chosen[lb]]
            seen.setdefault(("token", first), []).append(lb)
            seen.setdefault(("code", code.lower()), []).append(lb)
        return sorted({lb for group in seen.values() if len(group) > 1 for lb in group}, key=labels.index)

    for _ in range(8 * len(labels)):  # move clashing labels to their next option until every first token is unique
        clashing = [lb for lb in clashes() if chosen[lb] + 1 < len(options[lb])]
        if not clashing:
            break
        for lb in clashing[1:] if len(clashing) > 1 else clashing:  # the first keeps its choice
            chosen[lb] += 1
    return validate_codes({lb: options[lb][chosen[lb]][0] for lb in labels}, labels)


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
        if code.lower() in COMMON_WORDS:
            row["warnings"].append(f"'{code}' is a common English word: answers often start with it, so the model "
                                   "starts out picking it for every text. Use a code that is not a word.")
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
