"""`python -m studio inspect`: the sample data, a headerless TSV, --json keys, and exit 2 on unusable input."""

import json
import subprocess
import sys

from conftest import REPO, SAMPLE

from studio.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_inspect_sample_json():
    result = run_cli("inspect", str(SAMPLE), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("rows", "text_column", "label_column", "classes", "dropped", "warnings"):
        assert key in data
    assert data["rows"] == 424 and data["classes"] == {"Other": 378, "Rules Question": 46}
    assert (data["text_column"], data["label_column"]) == ("text", "label")
    assert data["codes"] == {"Other": "O", "Rules Question": "RQ"}
    assert data["split"]["val_b"]["Other"] == data["split"]["val_b"]["Rules Question"] > 0


def test_inspect_headerless_tsv_text(write, capsys):
    lines = [f"{'spam' if i % 4 == 0 else 'ham'}\tmessage number {i}, with a comma and \"quotes\" inside"
             for i in range(40)]
    path = write("SMSSpamCollection", "\n".join(lines))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no header row" in out and "tab-separated" in out
    assert "Label column: column_1" in out and "ham" in out and "spam" in out


def test_inspect_flags_override_detection(write, capsys):
    path = write("d.csv", "a,b,c\n" + "\n".join(f"x{i},{'P' if i % 2 else 'N'},free text {i} here" for i in
                                                range(20)))
    assert main(["inspect", str(path), "--text-col", "c", "--label-col", "b", "--json", "--balance",
                 "50/50"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["text_column"], data["label_column"]) == ("c", "b")


def test_unusable_input_exits_2_with_one_line():
    result = run_cli("inspect", str(SAMPLE), "--label-col", "nope")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: Label column 'nope' not found")
    assert "Traceback" not in result.stderr


def test_bad_flag_value_exits_2(write, capsys):
    assert main(["inspect", str(SAMPLE), "--val-fraction", "lots"]) == 2
    assert "val_fraction' expects float" in capsys.readouterr().err
