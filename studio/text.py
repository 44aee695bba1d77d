"""The one way text from a user or a file (file and column names, labels, codes, texts, the rubric, run names,
messages that quote them) is made safe where it is shown: ``escape_html`` where HTML is built, ``escape_markdown``
where Markdown is (a page, a model card), ``page_line`` for the studio's own lines that quote such text."""

from __future__ import annotations

import html
import re

MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]()#|~!])")


def escape_html(text) -> str:
    """Text as HTML shows it, never as markup: <, >, & and both quotes escaped."""
    return html.escape("" if text is None else str(text), quote=True)


def escape_markdown(text) -> str:
    """Text as Markdown shows it, never as markup: HTML escaped, Markdown's punctuation (emphasis, code, links,
    headings, tables) backslashed."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape("" if text is None else str(text), quote=False))


def code_span(text) -> str:
    """Text as Markdown code (HTML inside a code span is shown, not run): fenced with more backticks than any run of
    them inside, and the table's pipes escaped."""
    text = "" if text is None else str(text).replace("|", "\\|")
    fence = "`" * (1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def page_line(line: str) -> str:
    """A line of the studio's own words that may quote a user's text: its Markdown stays (emphasis, tables), but no
    HTML and no link in it is markup."""
    return html.escape(line, quote=False).replace("[", "\\[")


def named_list(names, limit: int = 12) -> str:
    """Names joined by commas, the first ``limit`` of them, the rest counted ("a, b and 139 more"): a message that
    stays readable at 150 classes."""
    names = list(names)
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def first_up(words: str) -> str:
    """A sentence's first letter up, the rest as written (str.capitalize would turn "LLM" into "llm")."""
    return words[:1].upper() + words[1:]
