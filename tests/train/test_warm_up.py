"""The web app imports the training stack ahead, where that saves the first Start's wait: unsloth on a CUDA machine,
first, in a background thread; nothing where unsloth is not installed (the page starts light)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import torch
from conftest import REPO

from studio import machine


@pytest.fixture
def fake_unsloth(tmp_path, monkeypatch):
    """An importable ``unsloth`` that records which thread imported it (or fails, when asked), on a machine that
    says it has CUDA."""
    def install(body: str = "") -> None:
        (tmp_path / "unsloth.py").write_text("import threading\nIMPORTED_IN = threading.current_thread().name\n"
                                             + body)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)  # restored afterwards

    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    yield install
    sys.modules.pop("unsloth", None)


def test_nothing_is_imported_ahead_without_unsloth(monkeypatch):
    monkeypatch.setattr(machine, "has_module", lambda name: False if name == "unsloth" else True)
    threads = threading.active_count()
    assert machine.import_stack_in_background() is None
    assert threading.active_count() == threads and "unsloth" not in sys.modules


def test_unsloth_is_imported_first_in_the_background_on_a_cuda_machine(fake_unsloth):
    fake_unsloth()
    thread = machine.import_stack_in_background()
    assert thread is not None and thread.daemon
    thread.join(timeout=60)
    assert sys.modules["unsloth"].IMPORTED_IN == "studio-import-stack"
    # the allocator setting the estimate assumes is in place before unsloth's first CUDA allocation
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == machine.ALLOCATOR_SETTING


def test_a_failing_import_ahead_is_reported_and_left_to_the_run(fake_unsloth):
    fake_unsloth("raise ImportError('this unsloth needs another torch')\n")
    said = []
    thread = machine.import_stack_in_background(log=said.append)
    thread.join(timeout=60)
    assert len(said) == 1 and "this unsloth needs another torch" in said[0] and "a run will try again" in said[0]
    assert "unsloth" not in sys.modules


def test_processes_that_do_not_train_leave_unsloth_alone(fake_unsloth):
    """eval, predict and serve use transformers and peft: importing the stack there does not import unsloth."""
    fake_unsloth()
    machine.import_stack()
    assert "unsloth" not in sys.modules


def test_the_classic_models_format_imports_nothing_of_transformers_after_the_stack():
    """skops (the classic model's safe format) scans every loaded module for scipy's ufuncs when it is first
    imported. After the stack, imported in its order (scipy.special before transformers), that scan stops at scipy;
    in the other order it imported 314 of transformers' lazy modules (8.4 s on this CPU)."""
    code = ("import sys; from studio.machine import import_stack; import_stack(); before = set(sys.modules); "
            "import skops.io; print(sorted(m for m in set(sys.modules) - before if m.startswith('transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


HEAP_PROBE = """
import ctypes, sys, threading
from studio.machine import few_malloc_heaps
print(few_malloc_heaps(), flush=True)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
barrier = threading.Barrier(6)

def work():  # six threads allocating at the same moment, as a training step and page requests do
    held = []
    barrier.wait()
    held += [libc.malloc(4096) for _ in range(2000)]
    barrier.wait()
    for p in held:
        libc.free(p)

threads = [threading.Thread(target=work) for _ in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
libc.malloc_stats()  # one "Arena N:" block per heap, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_web_app_keeps_two_malloc_heaps_for_all_its_threads_unless_the_user_set_it():
    def heaps(env: dict) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, timeout=120,
                             cwd=REPO, env={**os.environ, **env})
        assert out.returncode == 0, out.stderr
        return out.stdout.strip(), sum(line.startswith("Arena") for line in out.stderr.splitlines())

    assert heaps({}) == ("True", machine.WEB_APP_HEAPS)
    said, count = heaps({"MALLOC_ARENA_MAX": "6"})  # the user's setting wins
    assert said == "False" and count > machine.WEB_APP_HEAPS


def test_the_device_is_guessed_while_another_thread_is_still_importing_torch(monkeypatch):
    """A page handler asks for the device while the training stack is imported in another thread: torch is in
    sys.modules without its ``cuda`` yet (it raised AttributeError in the page); the guess falls back to the
    machine's devices."""
    import types

    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))  # half imported: no attributes yet
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert machine.device_guess() == "cpu"
