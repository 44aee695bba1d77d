"""The house: the layer contract (import-linter), the run's room of its own, reasons for every function-local import,
short functions. What these check is the README's "Layout"."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

from conftest import REPO

STUDIO = REPO / "studio"
LONG_FUNCTION = 60
RUN_FILES = {"run.json", "studio.json"}


def modules(under: Path = STUDIO):
    for path in sorted(under.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_the_layer_contract_holds():
    """faces → door → export | train → evaluate → classifier → estimate → data | models → runs → config | machine |
    text → errors | files; the faces reach the engine through the door only."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), str(REPO / "tests" / "importlinter.ini")], cwd=REPO, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 kept, 0 broken" in out.stdout


def test_no_engine_module_runs_a_studio_command():
    """The engine starts no face: a process it starts runs an engine entry point (``python -m studio.train.child``),
    never ``python -m studio COMMAND``, a dependency no import contract can see."""
    found = []
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.List, ast.Tuple)):
                words = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                if any(a == "-m" and b == "studio" for a, b in zip(words, words[1:])):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, found


def test_only_the_run_floor_names_the_run_files():
    """run.json and studio.json are read and written through studio/runs only."""
    found = []
    for path, tree in modules():
        if path.is_relative_to(STUDIO / "runs"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in RUN_FILES:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not found, found


def test_every_function_local_import_says_why():
    """Imports inside functions keep torch, transformers (after unsloth) or gradio away from where they are not
    needed; each block of them carries its reason on its first line."""
    missing = []
    for path, tree in modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                body = getattr(node, "body", None)
                previous_was_import = False
                for stmt in body if isinstance(body, list) else []:
                    is_import = isinstance(stmt, (ast.Import, ast.ImportFrom))
                    if is_import and not previous_was_import and "#" not in lines[stmt.lineno - 1]:
                        missing.append(f"{path.relative_to(REPO)}:{stmt.lineno}: {lines[stmt.lineno - 1].strip()}")
                    previous_was_import = is_import
    assert not missing, missing


def test_functions_are_short_or_say_why():
    """No function over 60 lines without a written reason (a "# long:" comment on its first line)."""
    long = []
    for path, tree in modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > LONG_FUNCTION and "# long:" not in lines[node.lineno - 1]:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {size} lines")
    assert not long, long


def test_the_trainer_hook_for_the_sampler_is_still_there():
    """transformers has no public hook for the training sampler: the studio overrides ``_get_train_sampler``
    (studio/train/sft.py). If a release renames it, this fails here, by name; tests/train/test_batching.py checks
    that the trainer really draws its batches from the studio's sampler."""
    from transformers import Trainer

    hook = getattr(Trainer, "_get_train_sampler", None)
    assert hook is not None, "transformers.Trainer._get_train_sampler is gone: update StudioSFTTrainer.sampler_for"
    assert list(inspect.signature(hook).parameters)[:2] == ["self", "train_dataset"]
