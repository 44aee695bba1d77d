"""GGUF without network at export time, from registry packages only.

Unsloth's ``save_pretrained_gguf`` clones and compiles llama.cpp from the internet when it runs, which fails offline
and behind firewalls. Here: llama.cpp's own converter (``convert_hf_to_gguf.py`` with its ``conversion`` package and
matching ``gguf-py``), taken once from the llama-cpp-python source distribution on PyPI (``python -m studio
setup-gguf``, while the package registry is reachable) into the studio's cache; k-quants through the compiled
llama.cpp inside the ``llama-cpp-python`` package (``llama_model_quantize``); and a reload check through
``llama_cpp.Llama``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.machine import cache_dir

GGUF_TYPES = {"gguf_f16": "f16", "gguf_q8_0": "q8_0", "gguf_q4_k_m": "q4_k_m"}
INSTALL_HINT = ("GGUF export needs llama-cpp-python (it compiles llama.cpp, about 5 minutes): "
                "pip install -r requirements-gguf.txt && python -m studio setup-gguf")
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        raise StudioError(INSTALL_HINT) from None


def converter_dir() -> Path:
    return cache_dir() / f"llama.cpp-{llama_cpp_version()}"


def setup_converter(log=print) -> Path:
    """Fetch the llama-cpp-python sdist matching the installed version (through pip, so through the package
    registry) and keep llama.cpp's converter from it. Run once while online; exports then work offline."""
    target = converter_dir()
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    version = llama_cpp_version()
    with tempfile.TemporaryDirectory() as tmp:
        log(f"Fetching llama-cpp-python {version} source from the package registry (once)...")
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                 f"llama-cpp-python=={version}", "-d", tmp], capture_output=True, text=True)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if not archives:
            raise StudioError("Could not fetch the llama-cpp-python source from the package registry "
                              f"({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no file'}). "
                              "Run python -m studio setup-gguf where PyPI is reachable.")
        staging = Path(tempfile.mkdtemp(prefix="llama.cpp.", dir=target.parent if target.parent.exists() else None))
        try:
            with tarfile.open(archives[0]) as tar:
                prefix = f"{tar.getnames()[0].split('/')[0]}/vendor/llama.cpp/"
                members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                           and m.name[len(prefix):].startswith(CONVERTER_PARTS) and (m.isfile() or m.isdir())]
                for member in members:
                    member.name = member.name[len(prefix):]
                tar.extractall(staging, members=members, filter="data")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            shutil.move(str(staging), target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log(f"llama.cpp converter ready in {target}.")
    return target


def ensure_ready() -> Path:
    """Fail with what to run when llama-cpp-python or the converter is missing."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise StudioError(INSTALL_HINT) from None
    path = converter_dir()
    if not (path / "convert_hf_to_gguf.py").exists():
        raise StudioError("The llama.cpp converter is not set up yet: run python -m studio setup-gguf once "
                          "(it fetches llama-cpp-python's source from the package registry).")
    return path


def convert(hf_dir: Path, out_file: Path, outtype: str, log=print) -> None:
    """HF folder → GGUF (f16 or q8_0) with llama.cpp's converter, in a subprocess (it is a script)."""
    converter = ensure_ready()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(converter), str(converter / "gguf-py")]),
           "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(converter / "convert_hf_to_gguf.py"), str(hf_dir), "--outfile", str(out_file),
           "--outtype", outtype]
    log(f"Converting to GGUF ({outtype})...")
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0 or not out_file.exists():
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise StudioError(f"llama.cpp's converter failed for {hf_dir.name}:\n{tail}")


def quantize(src: Path, dst: Path, method: str) -> None:
    import llama_cpp  # (an optional install: GGUF only)

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[method]
    code = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if code != 0 or not dst.exists():
        raise StudioError(f"llama.cpp could not quantize {src.name} to {method} (code {code}).")


class GGUFScorer:
    """Label probabilities from a GGUF file through llama.cpp: the same prompt ids and code tokens as
    ``LabelScorer`` (the converter keeps the token ids), summed code log-probabilities, softmax over classes."""

    def __init__(self, path: Path, code_ids: list[list[int]], n_ctx: int = 1024):
        import llama_cpp  # (an optional install: GGUF only)

        with plain_cpu_buffers():
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, logits_all=True, verbose=False, seed=0)
        self.code_ids = code_ids

    def probs(self, prompts: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(prompts), len(self.code_ids)))
        for i, ids in enumerate(prompts):
            self.llm.reset()
            self.llm.eval(ids)
            first = _log_softmax(np.asarray(self.llm.scores[len(ids) - 1]))
            for k, code in enumerate(self.code_ids):
                total = first[code[0]]
                if len(code) > 1:
                    self.llm.n_tokens = len(ids)  # rewind to the end of the prompt
                    self.llm.eval(code[:-1])
                    for j, token in enumerate(code[1:]):
                        total += _log_softmax(np.asarray(self.llm.scores[len(ids) + j]))[token]
                out[i, k] = total
        out = np.exp(out - out.max(axis=1, keepdims=True))
        return out / out.sum(axis=1, keepdims=True)

    def close(self) -> None:
        self.llm.close()


@contextlib.contextmanager
def plain_cpu_buffers():
    """Load weights into plain CPU buffers, not llama.cpp's "extra" ones (repacked or AMX): its AMX matrix product
    crashes the process on some virtualised CPUs with AMX (a segmentation fault on the first q8_0 or q4_k_m forward
    pass on this project's machines; ggml-org/llama.cpp#20824). ``Llama`` takes no such option, so its default model
    parameters are amended while it loads."""
    import llama_cpp.llama_cpp as bindings  # (an optional install: GGUF only)

    default = bindings.llama_model_default_params

    def plain():
        params = default()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = plain
    try:
        yield
    finally:
        bindings.llama_model_default_params = default


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x - x.max() - np.log(np.exp(x - x.max()).sum())


def modelfile(gguf_name: str, rubric: str, prompt_format: str, chat_template: str | None) -> str:
    """An Ollama Modelfile: the prompt template the model was trained with, the rubric, deterministic decoding."""
    system = rubric.replace('"""', '\\"\\"\\"')
    lines = [f"FROM ./{gguf_name}", ""]
    if prompt_format == "alpaca":
        lines += ['TEMPLATE """Below is an instruction that describes a task, paired with an input that provides '
                  'further context. Write a response that appropriately completes the request.', "",
                  "### Instruction:", "{{ .System }}", "", "### Input:", "{{ .Prompt }}", "", "### Response:", '"""']
    elif chat_template and "<|im_start|>" in chat_template:
        lines += ['TEMPLATE """{{- if .System }}<|im_start|>system', "{{ .System }}<|im_end|>", "{{ end }}"
                  "<|im_start|>user", "{{ .Prompt }}<|im_end|>", "<|im_start|>assistant", '"""',
                  'PARAMETER stop "<|im_end|>"']
    lines += ["", f'SYSTEM """{system}"""', "", "PARAMETER temperature 0", "PARAMETER top_k 1",
              "PARAMETER num_predict 8", ""]
    return "\n".join(lines)
