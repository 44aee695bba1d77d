"""What this machine and this process have, asked without loading torch where torch is not loaded yet (the page asks
at start-up): the device, the installed modules, the studio's cache folder, the machine's memory, this process's
place among the ranks of a multi-GPU run, and the versions a run records.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil

try:
    import resource  # the OS's high-water mark of this process's memory (not on Windows)
except ImportError:
    resource = None

GIB = 2**30
LIBRARIES = ["torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "unsloth_zoo",
             "bitsandbytes", "gradio", "scikit-learn", "skops"]


def cache_dir() -> Path:
    """The studio's own cache (the converted embedded model, measured speeds, untrained scores, label-issue folds):
    ``STUDIO_CACHE``, else ~/.cache/studio."""
    return Path(os.environ.get("STUDIO_CACHE", Path.home() / ".cache" / "studio"))


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def device_guess() -> str:
    """'cuda' or 'cpu' without importing torch when it is not loaded yet."""
    cuda = getattr(sys.modules.get("torch"), "cuda", None)  # None too while another thread is importing torch
    if cuda is not None:
        try:
            return "cuda" if cuda.is_available() else "cpu"
        except AttributeError:  # torch.cuda itself half imported
            pass
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "cpu"
    return "cuda" if os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") else "cpu"


def machine_ram_gb() -> float | None:
    try:
        return psutil.virtual_memory().total / GIB
    except Exception:  # a hint; never a reason to fail
        return None


M_ARENA_MAX = -8  # glibc's mallopt parameter
WEB_APP_HEAPS = 2


def few_malloc_heaps(heaps: int = WEB_APP_HEAPS) -> bool:
    """Let the C allocator keep at most ``heaps`` heaps for all of this process's threads (glibc; elsewhere nothing
    changes), unless the user set MALLOC_ARENA_MAX. The web app calls it first, before its server's threads exist:
    with a heap per busy thread its runs peaked 0.5-1.3 GiB above the RAM estimate and the command line's; with one
    heap under it, but every allocation then queued on one lock (40% slower); with two, under it at the speed its runs
    had before (docs/benchmarks.md, "CPU: training memory over a run"). A training process of its own (the command
    line, the web app's child on a CPU) keeps glibc's heaps: with two, which threads share a heap depends on the order
    they first allocate, and one more environment setting made the child's steps 1.5x slower (same page). True when
    the setting is in force."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # (only here)

        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, heaps))
    except (OSError, AttributeError):  # not glibc
        return False


@functools.lru_cache(maxsize=1)
def _this_process() -> psutil.Process:
    return psutil.Process()


def process_rss_gb() -> float:
    """This process's resident memory now, GiB (only reads a counter: the training's logging calls it every step)."""
    return _this_process().memory_info().rss / GIB


def process_peak_rss_gb() -> float:
    """The most resident memory this process has held so far, GiB: the OS's high-water mark, which also counts a peak
    freed again before anyone looked (inside a training step, while scoring); where the OS keeps none, the RSS now."""
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak / (GIB if sys.platform == "darwin" else 2**20)
    info = _this_process().memory_info()
    return getattr(info, "peak_wset", info.rss) / GIB  # Windows keeps the peak working set


PARENT_ENV = "STUDIO_PARENT"  # "pid:start time" of the web app that started a training process


def parent_env() -> dict[str, str]:
    """The environment entry that makes a training process this one starts end with this one (end_with_parent)."""
    me = _this_process()
    return {PARENT_ENV: f"{me.pid}:{me.create_time()!r}"}


def end_with_parent(poll_s: float = 0.5) -> threading.Thread | None:
    """In a training process the web app started: end at once when the app has gone (killed, its terminal closed),
    as a run in the app's own thread ends with it, rather than train on where no page shows it and no Stop reaches
    it; the run then reads interrupted and resumes from its last checkpoint. None where no app started this one."""
    spec = os.environ.get(PARENT_ENV, "")
    if ":" not in spec:
        return None
    pid, started = spec.split(":", 1)

    def parent_alive() -> bool:
        try:  # the start time tells the app from a later process given its number
            return psutil.Process(int(pid)).create_time() == float(started)
        except (psutil.Error, ValueError):
            return False

    def watch() -> None:
        while parent_alive():
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="studio-end-with-parent", daemon=True)
    thread.start()
    return thread


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_description() -> dict:
    import torch  # (torch: not at the page's start)

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return {"type": "cuda", "name": props.name, "count": torch.cuda.device_count(),
                "memory_gb": round(props.total_memory / GIB, 1), "cuda": torch.version.cuda}
    return {"type": "cpu", "name": cpu_name(), "cores": os.cpu_count()}


def cpu_name() -> str:
    """The CPU's model name where the OS tells it (Linux: "AMD EPYC", "Intel(R) Xeon(R) ..."), else its architecture:
    two CPUs of one architecture can train at very different speeds (with or without AVX-512, say)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes ``accelerate launch`` (or torchrun) started: rank 0 alone writes the
    run folder."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def ranks() -> Ranks:
    def env(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default

    return Ranks(env("RANK", 0), max(1, env("WORLD_SIZE", 1)), env("LOCAL_RANK", 0))


def join_process_group() -> None:
    """Join the ranks' process group now (NCCL on GPUs, gloo on CPUs), through Accelerate's state (the trainer reuses
    it), so the ranks can agree on their folder before they start."""
    import torch  # (torch: only with several processes)
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())


def wait_for_all_ranks() -> None:
    """Every rank reaches this point before any goes on (nothing to wait for in a single process)."""
    import torch.distributed as dist  # (torch: only with several processes)

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def leave_process_group() -> None:
    """Leave the process group before the process ends: its communication threads are joined here, not torn down
    mid-flight while the interpreter exits (which aborts the process: "terminate called without an active
    exception")."""
    import torch.distributed as dist  # (torch: only with several processes)

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


_STACK_LOCK = threading.Lock()


# Imported before transformers. skops (the classic model's safe format) scans every loaded module, in import order,
# for scipy's ufuncs once, when it is first imported; with scipy.special loaded after transformers, that scan walks
# transformers' lazy modules and imports what they name: 8.4 s on a CPU (0.4 s in this order), and 129 of the 141 s
# of the web app's first evaluation on a GPU with unsloth (docs/benchmarks.md, "Start to evaluated on a GPU").
IMPORTED_BEFORE_THE_STACK = ("scipy.special",)


def import_stack(for_training: bool = False) -> None:
    """Import torch and transformers (with the names every part of the studio takes from it) once, under one lock.
    Two threads importing transformers for the first time at once (the web app's training thread and a page
    request) can find its lazily loaded names half made: "cannot import name 'AutoTokenizer' from 'transformers'".
    Call it where a thread may be the first to use transformers. ``for_training`` (a process that will train: the
    web app): on a CUDA machine with unsloth installed, unsloth first, as its patches must come before transformers
    is imported (not for predict, serve or eval: they use transformers and peft, and importing unsloth takes ~26 s)."""
    with _STACK_LOCK:
        for name in IMPORTED_BEFORE_THE_STACK:
            importlib.import_module(name)
        if for_training and has_module("unsloth") and "unsloth" not in sys.modules:
            use_expandable_cuda_segments()  # before torch's first CUDA allocation, which importing unsloth makes
            import torch  # (torch: only for a process that trains, here)

            if torch.cuda.is_available():
                import unsloth  # noqa: F401 (patches transformers, trl and peft)
        import torch  # noqa: F401 (the stack, once)
        from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer,  # noqa: F401
                                  PreTrainedModel, TrainerCallback)


def import_stack_in_background(log=print) -> threading.Thread | None:
    """Where a run will train with unsloth (it is installed), import the stack now in a background thread: importing
    unsloth takes about 26 s on an H200 (docs/benchmarks.md, "Start to evaluated on a GPU"), which the web app's
    first Start would otherwise wait for; and unsloth comes first even when the page's first data check is what
    needs transformers. None where there is nothing to gain (no unsloth: the CPU path imports what it needs when
    work starts, so the page starts light)."""
    if not has_module("unsloth"):
        return None

    def quietly() -> None:
        try:
            import_stack(for_training=True)
        except Exception as exc:  # noqa: BLE001 (the run that needs it reports the same error, with its advice)
            log(f"Importing the training stack ahead failed ({type(exc).__name__}: {exc}); a run will try again.")

    thread = threading.Thread(target=quietly, name="studio-import-stack", daemon=True)
    thread.start()
    return thread


ALLOCATOR_SETTING = "expandable_segments:True"


def use_expandable_cuda_segments() -> bool:
    """PyTorch's CUDA allocator with expandable segments, unless the user configured the allocator: micro-batches of
    changing padded widths otherwise leave cached blocks that fit no later request, and a run on real data reserved
    up to twice what it allocated (Rotten Tomatoes on an H200: 30.9 GB reserved, 15.8 GB with this; docs/
    benchmarks.md). Set before the first CUDA allocation (the loaders call it); True when the setting is in force."""
    if os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ALLOCATOR_SETTING) != ALLOCATOR_SETTING:
        return False  # the user's own allocator settings win
    os.environ["PYTORCH_CUDA_ALLOC_CONF"] = ALLOCATOR_SETTING
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        try:  # already initialised: the allocator takes the setting at run time (private, so guarded; torch 2.11
            # names the device-neutral setter and warns on the CUDA one every run)
            setter = getattr(torch._C, "_accelerator_setAllocatorSettings", None) or \
                torch.cuda.memory._set_allocator_settings
            setter(ALLOCATOR_SETTING)
        except (AttributeError, RuntimeError):
            return False
    return True
