"""Text from users and files is shown as text: escaped where HTML or Markdown is built, and CSV cells that a
spreadsheet would run as formulas are written as text."""

import pandas as pd

from studio.runs.sheets import for_spreadsheets, write_csv
from studio.text import code_span, escape_html, escape_markdown, page_line

PAYLOAD = "<img src=x onerror=alert(1)>"


def test_html_and_markdown_escaping_leave_no_markup():
    assert escape_html(PAYLOAD) == "&lt;img src=x onerror=alert(1)&gt;"
    assert escape_html("a \"b\" 'c'") == "a &quot;b&quot; &#x27;c&#x27;"
    md = escape_markdown("[see](javascript:alert(1)) **bold** " + PAYLOAD)
    assert "<" not in md and "](" not in md and "**" not in md
    assert escape_markdown(None) == ""
    line = page_line("**Classes**: " + PAYLOAD + " [x](javascript:y)")
    assert line.startswith("**Classes**") and "<img" not in line and "\\[x]" in line  # our emphasis stays
    assert code_span("RQ") == "`RQ`" and code_span("a`b") == "``a`b``" and code_span("x|y") == "`x\\|y`"


def test_cells_that_would_run_as_formulas_are_written_as_text(tmp_path):
    frame = pd.DataFrame({"text": ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2", "@SUM(A1)", "plain", None],
                          "p": [0.1, -0.5, 0.3, 0.4, 0.5, 0.6], "=cmd": ["a", "b", "c", "d", "e", "f"]})
    safe = for_spreadsheets(frame)
    assert list(safe["text"])[:5] == ["'=HYPERLINK(\"http://x\",\"y\")", "'+1+1", "'-2", "'@SUM(A1)", "plain"]
    assert safe["p"].tolist() == frame["p"].tolist()  # numbers stay numbers
    assert list(safe.columns) == ["text", "p", "'=cmd"]
    assert frame["text"][0].startswith("=")  # the caller's frame is not changed
    back = pd.read_csv(write_csv(frame, tmp_path / "out.csv"))
    assert back["text"][1] == "'+1+1" and back["p"][1] == -0.5
