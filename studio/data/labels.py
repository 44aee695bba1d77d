"""Label codes: short outputs the model learns instead of long label names (the guide: `Rules Question → RQ`).

Short codes cost fewer tokens and give constrained scoring one clean decision; every output maps back to the
user's label. The token checks use the tokenizer the run will train with.
"""

from __future__ import annotations

import itertools
import re
import string

from studio.errors import StudioError
from studio.text import named_list

MAX_CODE_TOKENS = 3
MANY_CLASSES = 16  # beyond this many labels, codes are the labels' own words (suggest_codes)
SHORT_LABEL_CHARS = 4
WHOLE_WORD_CHARS = 14  # a one-word label up to this long may be its own code, when it is one token
# Short English words that start an answer on their own: as a code, one of them starts with a huge prior
# (docs/benchmarks.md, "Numbers the code relies on"). Compared ignoring case.
COMMON_WORDS = set("""a i o an as at be by do go he if in is it me my no of oh ok on or so to up us we am are but can
did for had has her him his how its may not now our out she the too two was way who why yes you all and any few get
got let new old one own per put say see set six ten use yet""".split()) - {"o"}  # 'O' is the guide's own code


def suggest_codes(labels: list[str], tokenizer=None) -> dict[str, str]:
    """Label → short unique code, never more than ``MAX_CODE_TOKENS`` tokens, for any number of labels.

    A handful of labels: letters (the guide's 'Rules Question' → 'RQ'); labels that are already short (≤4 chars, one
    word) are kept as they are. With the tokenizer the model trains with, the same letters unless they are a common
    word (it would start with a huge prior) or over 2 tokens, and every code starting with its own token (so the
    model's first answer token decides): where letters collide, the label's own word ('neutral', 'negative' rather
    than 'NEU', 'NEG', which share their first token 'N').

    Many labels (over ``MANY_CLASSES``): letters run long and carry no meaning ('BNUACOCD'), so each label's code is
    its most telling word ('change_language' → 'language'), one token where the tokenizer has it, so that scoring
    reads every class from one pass (docs/benchmarks.md, "Many classes")."""
    if len(labels) > MANY_CLASSES:
        return _word_codes(labels, tokenizer)
    letters = letter_codes(labels)
    if tokenizer is None:
        return letters
    return _made_unique(_token_codes(labels, letters, tokenizer), labels, tokenizer)


def letter_codes(labels: list[str]) -> dict[str, str]:
    """The guide's letters for each label ('Rules Question' → 'RQ'), lengthened until unique; short one-word labels
    kept as they are."""
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
    return {lb: options[lb][chosen[lb]][0] for lb in labels}


def _made_unique(codes: dict[str, str], labels: list[str], tokenizer) -> dict[str, str]:
    """``codes`` with any code that repeats another (ignoring case) or runs over ``MAX_CODE_TOKENS`` replaced by a
    free one from the label's words or the spare pool: a suggestion never fails."""
    taken: set[str] = set()
    out = {}
    for lb in labels:
        code = codes[lb]
        if code.lower() in taken or len(code_token_ids(tokenizer, code)) > MAX_CODE_TOKENS:
            code = _first_free(_word_options(lb, {}, tokenizer), taken, tokenizer)
        out[lb] = code
        taken.add(code.lower())
    return out


def _first_free(options: list[str], taken: set[str], tokenizer) -> str:
    """The first of a label's ``options`` not taken (ignoring case), else the first free spare code."""
    return next(c for c in itertools.chain(options, _spare_codes(tokenizer)) if c.lower() not in taken)


def _word_codes(labels: list[str], tokenizer) -> dict[str, str]:
    """Each label's most telling word as its code: one token where possible (then every code has its own first
    token), else two words, else a spare code; unique ignoring case, at most ``MAX_CODE_TOKENS`` tokens each."""
    spread: dict[str, int] = {}  # how many labels each word appears in: a rarer word tells its label apart
    for lb in labels:
        for w in {w.lower() for w in _words(lb)}:
            spread[w] = spread.get(w, 0) + 1
    options = {lb: _word_options(lb, spread, tokenizer) for lb in labels}
    single = {lb: [c for c in options[lb] if c.lower() not in COMMON_WORDS
                   and (tokenizer is None or len(code_token_ids(tokenizer, c)) == 1)] for lb in labels}
    chosen = _matched(labels, single)  # as many labels as possible on a one-token word of their own
    taken = {c.lower() for c in chosen.values()}
    for lb in labels:
        if lb not in chosen:
            chosen[lb] = _first_free(options[lb], taken, tokenizer)
            taken.add(chosen[lb].lower())
    return {lb: chosen[lb] for lb in labels}


def _word_options(label: str, spread: dict[str, int], tokenizer) -> list[str]:
    """A label's candidate codes, best first: its words (the rarest among the labels first), two words joined
    ('cardDeclined'), its common English words, the label itself; only those of at most ``MAX_CODE_TOKENS``
    tokens."""
    words = list(dict.fromkeys(_words(label)))
    ranked = sorted((w for w in words if len(w) > 1 or w.isdigit() or len(words) == 1),
                    key=lambda w: (spread.get(w.lower(), 1), -len(w)))
    common = [w for w in ranked if w.lower() in COMMON_WORDS]
    out = [v for w in ranked if w not in common for v in (w, w.capitalize())]  # 'Busy' may be one token, 'busy' two
    if len(words) > 1:
        out += [a + b[:1].upper() + b[1:] for a, b in zip(words, words[1:])]
    out += common + [label]
    fits = [c for c in dict.fromkeys(out) if c.strip() and "\n" not in c and c == c.strip()
            and (tokenizer is None or len(code_token_ids(tokenizer, c)) <= MAX_CODE_TOKENS)]
    return fits


def _matched(labels: list[str], options: dict[str, list[str]]) -> dict[str, str]:
    """A one-to-one choice of codes from each label's ranked options covering as many labels as it can: each label
    takes its best free option, and a label left without one takes a code from a label that can move to another
    (augmenting paths, Kuhn's matching)."""
    owner: dict[str, str] = {}  # code (lower case) → label

    def place(lb: str, seen: set[str]) -> bool:
        for code in options[lb]:
            key = code.lower()
            if key in seen:
                continue
            seen.add(key)
            if key not in owner or place(owner[key], seen):
                owner[key] = lb
                return True
        return False

    for lb in sorted(labels, key=lambda lb: len(options[lb])):  # the most constrained first
        place(lb, set())
    by_label = {lb: key for key, lb in owner.items()}
    return {lb: next(c for c in options[lb] if c.lower() == by_label[lb]) for lb in labels if lb in by_label}


def _spare_codes(tokenizer):
    """Codes that carry no meaning, for labels left without one: two letters, then letter + digit, then three
    letters; each at most ``MAX_CODE_TOKENS`` tokens (a letter or a digit is at most one token in the tokenizers
    the studio trains, and a code longer than that is skipped)."""
    upper = string.ascii_uppercase
    pools = (("".join(p) for p in itertools.product(upper, repeat=2)),
             (a + d for a in upper for d in string.digits),
             ("".join(p) for p in itertools.product(upper, repeat=3)))
    for code in itertools.chain(*pools):
        if code.lower() in COMMON_WORDS:
            continue
        if tokenizer is None or len(code_token_ids(tokenizer, code)) <= MAX_CODE_TOKENS:
            yield code


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


OUT_OF_SCOPE_NAMES = {"oos", "out_of_scope", "out-of-scope", "out of scope", "other", "others", "none",
                      "none of these", "no_intent", "unknown", "misc"}


def out_of_scope_label(labels: list[str], wanted: str = "auto") -> str | None:
    """The class that means "none of these": the one named (``wanted``), "auto" one named like ``oos``, ``other`` or
    ``none`` (only when the labels are more than two: with two, "other" is simply the second class), "off" none."""
    wanted = (wanted or "auto").strip()
    if wanted.lower() == "off":
        return None
    if wanted.lower() == "auto":
        named = [lb for lb in labels if lb.strip().lower() in OUT_OF_SCOPE_NAMES]
        return named[0] if len(labels) > 2 and len(named) == 1 else None
    if wanted not in labels:
        raise StudioError(f"The out-of-scope class '{wanted}' is not one of the labels "
                          f"({named_list(map(repr, labels))}). Name one of them, or 'auto' (a class named like oos, "
                          "other or none) or 'off'.")
    return wanted


def unsure_target(wanted: float, labels: list[str], out_of_scope: str | None) -> float | None:
    """The accuracy the answered texts keep where the classifier may answer "unsure" (None: it answers every text,
    or the out-of-scope class answers instead)."""
    if not 0 <= wanted < 1:
        raise StudioError(f"'unsure' takes the accuracy the answered texts should keep, above 0 and below 1 (0.95: "
                          f"95 in 100), or 0 to answer every text (got {wanted:g}).")
    clash = [lb for lb in labels if lb.strip().lower() == "unsure"]
    if wanted and clash and not out_of_scope:
        raise StudioError(f"The labels already have a class {clash[0]!r}: name it the out-of-scope class "
                          f"(--out-of-scope {clash[0]}) so uncertain texts are answered with it, or set 'unsure' to 0.")
    return float(wanted) if wanted and not out_of_scope else None


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
    shared_starts = [shared for shared in first_tokens.values() if len(shared) > 1]
    if len(codes) > MANY_CLASSES and shared_starts:  # expected with many classes: scoring reads every code's tokens
        warnings.append(f"{sum(map(len, shared_starts))} codes share their first token with another code; scoring "
                        "reads each code's own tokens (one more pass for all of them).")
    elif tokenizer is not None:
        for shared in shared_starts:
            warnings.append(
                f"Codes {', '.join(repr(c) for c in shared)} start with the same token "
                f"{tokenizer.decode([code_token_ids(tokenizer, shared[0])[0]])!r}: the model's first output token "
                "cannot tell them apart. Scoring still sums each code's tokens, but codes with distinct first tokens "
                "are more robust: rename one.")
    if len(codes) <= MANY_CLASSES:  # a prefix matters to generated answers, not to scoring: many classes skip it
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
    """The instruction used when the user has not written a rubric: every code named, for a handful of classes; for
    many, no list (it would ride on every training and scored row: 1,190 tokens at 151 classes), since the codes are
    the labels' own words and training teaches them (docs/benchmarks.md, "Many classes")."""
    if len(codes) > MANY_CLASSES:
        return (f"Classify the text into exactly one of {len(codes)} categories. "
                "Answer with the category's code only.")
    return listing_rubric(codes)


def listing_rubric(codes: dict[str, str]) -> str:
    """A plain instruction naming every code."""
    lines = "\n".join(f"- {code}: {label}" for label, code in codes.items())
    return ("Classify the text into exactly one of these categories. "
            f"Answer with the code only.\n{lines}")
