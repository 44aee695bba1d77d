"""What every verb's result has: its lines for a terminal, the same lines as Markdown for a page (text from users
and files in them made safe by ``studio.text``).

The faces may not import ``studio.text`` (the faces contract: the engine only through the door), so its three
escaping helpers are re-exported here, on purpose, for the charts and pages that escape a file's labels."""

from __future__ import annotations

from studio.text import escape_html, escape_markdown, page_line  # noqa: F401 (re-exported for the faces)


class Result:
    def lines(self) -> list[str]:
        raise NotImplementedError

    def text(self) -> str:
        return "\n".join(self.lines())

    def markdown(self) -> str:
        return as_markdown(self.lines())


def as_markdown(lines: list[str]) -> str:
    """Report lines (the same a terminal prints) as Markdown: list items and table rows stay together, other lines
    become paragraphs. The lines may quote a file's labels and names, so no HTML and no link in them is markup."""
    def kind(line: str) -> str | None:
        if line.startswith("|"):
            return "table"
        return "list" if line.startswith("- ") or line.split(". ", 1)[0].isdigit() else None

    out: list[str] = []
    for line in lines:
        if out and (kind(line) is None or kind(line) != kind(out[-1])):
            out.append("")
        line = page_line(line)
        out.append(line.replace("+ ", "\\+ ", 1) if line.startswith("+ ") else line)
    return "\n".join(out)


def md_list(items) -> str:
    return "\n".join(f"- {page_line(i)}" for i in items)
