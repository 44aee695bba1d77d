"""Project-level facts: the package that `import studio` finds, the sample assets, the layout."""

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import REPO, SAMPLE


def test_import_studio_resolves_to_this_repository():
    """unsloth's wheel installs its own top-level `studio`; ours must always win."""
    import studio

    assert Path(studio.__file__).resolve().parent == REPO / "studio"
    out = subprocess.run([sys.executable, "-c", "import studio, studio.config; print(studio.__file__)"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out).resolve().parent == REPO / "studio"


def test_engine_imports_without_gradio():
    code = ("import sys, studio.cli, studio.data.prepare, studio.config; "
            "assert 'gradio' not in sys.modules, 'engine imported gradio'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_sample_dataset_is_large_varied_and_90_10():
    with open(SAMPLE, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts) >= 400
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == {"Rules Question", "Other"}
    assert 0.08 <= counts["Rules Question"] / len(rows) <= 0.12
    # Written by hand, not from templates: openings and lengths vary.
    openings = Counter(" ".join(t.lower().split()[:3]) for t in texts)
    assert openings.most_common(1)[0][1] <= 0.03 * len(texts)  # 'how do you' is English, not a template
    assert len(openings) >= 0.85 * len(texts)
    lengths = sorted(len(t) for t in texts)
    assert lengths[0] < 50 and lengths[-1] > 130
    assert (REPO / "assets" / "sample_rubric.txt").read_text(encoding="utf-8").count("RQ") >= 2


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    start, test = blocks
    assert "python launch.py" in start and "pytest" in test
    assert test in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_underscore_names_stay_inside_their_package():
    """A package's private names are its own: no `from studio.x import _name` from another package."""
    import ast

    crossings = []
    for path in (REPO / "studio").rglob("*.py"):
        here = path.relative_to(REPO).parts[:2]  # ("studio", "<package or module>")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("studio."):
                there = tuple(node.module.split(".")[:2])
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and there != here:
                    crossings.append(f"{path.relative_to(REPO)}: from {node.module} import {', '.join(private)}")
    assert not crossings, crossings
