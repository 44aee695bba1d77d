"""Model loading: choose the backend (Unsloth or transformers + peft), resolve the model source (embedded default,
local folder, hub id), load the base model and tokenizer, and attach the LoRA adapter. For inference (evaluation,
the playground, the sanity check, export checks): ``load_base`` and ``load_with_adapter``, with one dtype rule,
``inference_dtype``.

Unsloth is imported lazily and only when CUDA is present: importing it on a machine without a GPU fails.
Every fallback (4-bit on CPU, adamw_8bit without bitsandbytes, ...) is recorded as a notice that the UI shows and
``run.json`` keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from studio.config import (EMBEDDED_MODEL, LoraSpec, ModelSpec, TrainSpec, effective_checkpointing, four_bit,
                           remote_code_refusal)
from studio.errors import StudioError
from studio.machine import has_module, import_stack, ranks, use_expandable_cuda_segments

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
EIGHT_BIT_OPTIMIZERS = {"adamw_8bit", "paged_adamw_8bit"}


@dataclass
class Backend:
    name: str  # "unsloth" | "transformers"
    reason: str
    device: str  # "cuda" | "cpu"
    notices: list[str] = field(default_factory=list)


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    backend: Backend
    source: str
    dtype: str  # the weights' dtype
    load_in_4bit: bool
    autocast: str | None = None  # compute dtype where it differs from the weights' (bfloat16 on a capable CPU)


def cuda_available() -> bool:
    import torch  # (torch: not at the page's start)

    return torch.cuda.is_available()


def choose_backend(requested: str = "auto") -> Backend:
    cuda = cuda_available()
    device = "cuda" if cuda else "cpu"
    unsloth = has_module("unsloth")
    if requested == "unsloth":
        if not cuda:
            raise StudioError("The Unsloth backend needs an NVIDIA GPU (CUDA) and none was found. "
                              "Choose backend 'auto' or 'transformers'.")
        if not unsloth:
            raise StudioError("unsloth is not installed. Run: pip install -r requirements-gpu.txt, "
                              "or choose backend 'auto' or 'transformers'.")
        return Backend("unsloth", "requested in the config", device)
    if requested == "transformers":
        return Backend("transformers", "requested in the config", device)
    if cuda and unsloth:
        return Backend("unsloth", "CUDA GPU found and unsloth is installed", device)
    if cuda:
        return Backend("transformers", "CUDA GPU found but unsloth is not installed "
                                       "(pip install -r requirements-gpu.txt for faster, leaner training)", device)
    return Backend("transformers", "no CUDA GPU: training on the CPU with transformers + peft", device)


def is_embedded(name: str | None) -> bool:
    name = (name or "").strip()
    return not name or name == EMBEDDED_MODEL or name.startswith("embedded:")


def needs_conversion(name: str | None) -> bool:
    """Whether using ``name`` first converts the embedded model (once per machine)."""
    from studio.models.embedded import is_converted  # (the GGUF reader: only when the model is used)

    return is_embedded(name) and not is_converted()


def resolve_source(name: str, log=print) -> str:
    """A path or hub id that from_pretrained understands."""
    name = (name or "").strip()
    if is_embedded(name):
        from studio.models.embedded import embedded_model_dir  # (the GGUF reader: only when the model is used)

        return str(embedded_model_dir(log=log))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise StudioError(f"{path} has no config.json, so it is not a model folder. Pick the folder that "
                              "holds config.json and the weights (*.safetensors).")
        return str(path)
    if HUB_ID.match(name):
        return name
    raise StudioError(f"Model '{name}' is neither an existing folder nor a hub id like "
                      "Qwen/Qwen2.5-0.5B-Instruct. Check the spelling, or pick the embedded default.")


def effective_settings(spec: ModelSpec, train: TrainSpec, backend: Backend) -> tuple[bool, str, str]:
    """(load_in_4bit, optim, dtype) that will really be used, with a notice for every fallback."""
    cuda = backend.device == "cuda"
    bnb = has_module("bitsandbytes")
    load_in_4bit = bool(four_bit(spec))  # auto is decided by the recipe (a run's config holds true or false)
    if load_in_4bit and not cuda:
        backend.notices.append("4-bit loading needs a CUDA GPU: loading the full-precision weights on the CPU.")
        load_in_4bit = False
    elif load_in_4bit and not bnb:
        backend.notices.append("4-bit loading needs bitsandbytes (pip install -r requirements-gpu.txt): "
                               "loading 16-bit weights.")
        load_in_4bit = False
    optim = train.optim
    if optim in EIGHT_BIT_OPTIMIZERS and (not cuda or not bnb):
        why = "the CPU" if not cuda else "this machine (bitsandbytes is not installed)"
        backend.notices.append(f"{optim} is not available on {why}: using adamw_torch instead.")
        optim = "adamw_torch"
    if optim == "adamw_torch_fused" and not cuda:
        optim = "adamw_torch"
    dtype = spec.dtype
    if dtype == "auto":
        if cuda:
            import torch  # (torch: not at the page's start)

            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    elif not cuda and dtype == "float16":
        backend.notices.append("float16 training is not supported on the CPU: using float32.")
        dtype = "float32"
    return load_in_4bit, optim, dtype


def cpu_has_bf16() -> bool:
    """Whether torch computes bfloat16 on this CPU (AVX-512; natively with AVX-512 BF16 or AMX): there, bfloat16
    autocast runs the matrix products faster than float32 (docs/benchmarks.md, "Numbers the code relies on")."""
    import torch  # (torch: not at the page's start)

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(spec: ModelSpec, device: str) -> str | None:
    """bfloat16 compute over float32 weights on a CPU that has it, when the dtype is left on auto."""
    return "bfloat16" if device == "cpu" and spec.dtype == "auto" and cpu_has_bf16() else None


def cpu_computes_bf16(spec: ModelSpec) -> bool:
    """Whether training ``spec`` on a CPU computes in bfloat16 (autocast on a CPU that has it, or bfloat16 weights)
    rather than float32, whose activations weigh about twice as much (studio.estimate.ram)."""
    return spec.dtype == "bfloat16" or autocast_dtype(spec, "cpu") is not None


def remote_code_allowed(spec: ModelSpec, source: str) -> bool:
    """Whether the model's own code may run (validate_config checks the same for the name before a run starts)."""
    refusal = remote_code_refusal(spec, source)
    if refusal:
        raise StudioError(refusal)
    return spec.trust_remote_code


def load_for_training(spec: ModelSpec, lora: LoraSpec, train: TrainSpec, backend: Backend,
                      log=print) -> tuple[LoadedModel, str]:
    """Base model + tokenizer with the LoRA adapter attached; returns (loaded, effective optimizer)."""
    load_in_4bit, optim, dtype = effective_settings(spec, train, backend)
    if backend.device == "cuda":
        use_expandable_cuda_segments()
    source = resolve_source(spec.name, log=log)
    trust = remote_code_allowed(spec, source)
    if lora.loftq_config and load_in_4bit:
        backend.notices.append("LoftQ with 4-bit loading: expect a one-time memory spike while the adapter is "
                               "initialised.")
    if backend.name == "unsloth":
        model, tokenizer = _load_unsloth(source, spec, lora, load_in_4bit, dtype, trust)
    else:
        model, tokenizer = _load_transformers(source, spec, lora, load_in_4bit, dtype, backend.device, trust)
    ensure_pad_token(tokenizer)
    return LoadedModel(model, tokenizer, backend, source, dtype, load_in_4bit,
                       autocast_dtype(spec, backend.device)), optim


def _torch_dtype(name: str):
    import torch  # (torch: not at the page's start)

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def _load_unsloth(source, spec: ModelSpec, lora: LoraSpec, load_in_4bit: bool, dtype: str, trust: bool = False):
    import unsloth  # noqa: F401  (patches transformers/trl/peft; must come first)
    from unsloth import FastLanguageModel

    placement = {}
    if ranks().distributed:  # one whole copy per GPU (DDP), on this process's GPU
        import torch  # (torch: not at the page's start)

        placement["device_map"] = {"": torch.cuda.current_device()}
    model, tokenizer = _hub_errors(source, lambda: FastLanguageModel.from_pretrained(
        model_name=source, max_seq_length=spec.max_seq_length, dtype=_torch_dtype(dtype),
        load_in_4bit=load_in_4bit, trust_remote_code=trust, **placement))
    checkpointing = {"unsloth": "unsloth", "true": True, "false": False}[
        effective_checkpointing(lora.use_gradient_checkpointing, "cuda")]
    model = _target_errors(lambda: FastLanguageModel.get_peft_model(
        model, r=lora.r, target_modules=list(lora.target_modules), lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout, bias=lora.bias, use_gradient_checkpointing=checkpointing,
        random_state=lora.random_state, use_rslora=lora.use_rslora, loftq_config=lora.loftq_config or {}),
        model)
    return model, tokenizer


def _load_transformers(source, spec: ModelSpec, lora: LoraSpec, load_in_4bit: bool, dtype: str, device: str,
                       trust: bool = False):
    import torch  # (torch: not at the page's start)
    from peft import LoftQConfig, LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"dtype": _torch_dtype(dtype), "trust_remote_code": trust}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig  # (after unsloth's patches)

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=_torch_dtype(dtype))
    if device == "cuda":
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    tokenizer = _hub_errors(source, lambda: AutoTokenizer.from_pretrained(source, trust_remote_code=trust))
    model = _hub_errors(source, lambda: AutoModelForCausalLM.from_pretrained(source, **kwargs))
    checkpointing = effective_checkpointing(lora.use_gradient_checkpointing, device) != "false"
    if load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    config = LoraConfig(
        r=lora.r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout, bias=lora.bias,
        target_modules=list(lora.target_modules), use_rslora=lora.use_rslora, task_type="CAUSAL_LM",
        **({"init_lora_weights": "loftq", "loftq_config": LoftQConfig(**lora.loftq_config)}
           if lora.loftq_config else {}))
    torch.manual_seed(lora.random_state)
    model = _target_errors(lambda: get_peft_model(model, config), model)
    return model, tokenizer


def _hub_errors(source: str, load):
    try:
        return load()
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise StudioError(f"The model at '{source}' ships its own Python code, which the studio does not run unless "
                          "you allow it: for a local folder you have read and trust, tick trust_remote_code.") from None
    except OSError as exc:
        where = "folder" if Path(source).exists() else "hub id"
        raise StudioError(f"Could not load the model from the {where} '{source}': {str(exc).splitlines()[0]} "
                          "Check the name and your internet connection, or pick a local folder or the embedded "
                          "default.") from None


def _target_errors(attach, model):
    try:
        return attach()
    except ValueError as exc:
        if "not found in the base model" not in str(exc) and "Target modules" not in str(exc):
            raise
        import torch  # (torch: not at the page's start)

        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise StudioError(f"None of the target modules were found in this model. Its linear layers are: "
                          f"{', '.join(names)}. Set target_modules to some of them.") from None


def ensure_pad_token(tokenizer) -> None:
    """Padding needs a pad token distinct from the end-of-turn token the model must learn to emit."""
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        return
    for candidate in ("<|endoftext|>", "<|finetune_right_pad_id|>", "<pad>", "<unk>"):
        if candidate in tokenizer.get_vocab() and candidate != tokenizer.eos_token:
            tokenizer.pad_token = candidate
            return
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def load_tokenizer(name: str, log=print):
    """Only the tokenizer (for token counts and data checks, without loading weights)."""
    import_stack()  # a page request, perhaps while the launch's background import or a training thread runs
    from transformers import AutoTokenizer  # (after unsloth's patches)

    source = resolve_source(name, log=log)
    tokenizer = _hub_errors(source, lambda: AutoTokenizer.from_pretrained(source))
    ensure_pad_token(tokenizer)
    return tokenizer


# ---- inference ----------------------------------------------------------------------------------------------------
def inference_device() -> str:
    return "cuda" if cuda_available() else "cpu"


def inference_dtype(device: str | None = None):
    """The one dtype rule for inference: bfloat16 on GPUs that support it (else float16), float32 on a CPU."""
    import torch  # (torch: not at the page's start)

    if (device or inference_device()) == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def inference_autocast(device: str):
    """The compute dtype for the live evaluations during training: bfloat16 on a CPU that has it (the float32
    weights stay), None elsewhere (GPUs already hold 16-bit weights). Never for a probability that is kept: bfloat16
    products move with the batch's shape (docs/benchmarks.md, "Same text, same probability")."""
    import torch  # (torch: not at the page's start)

    return torch.bfloat16 if device == "cpu" and cpu_has_bf16() else None


def _placement(device: str) -> dict:
    import torch  # (torch: with the model)

    if device == "cuda":
        use_expandable_cuda_segments()
    # the current GPU: a rank of a multi-GPU process group uses its own (Accelerate sets it)
    return {"device_map": {"": torch.cuda.current_device()}} if device == "cuda" else {}


def load_base(name: str, *, log=print, dtype=None, device: str | None = None, trust_remote_code: bool = False):
    """A base model for inference (on the GPU when there is one) and its tokenizer; returns (model, tokenizer).
    ``name``: a hub id, a local folder or the embedded default."""
    import_stack()  # the stack in its order, once (predict, serve and eval may be the process's first use)
    from transformers import AutoModelForCausalLM  # (after unsloth's patches)

    device = device or inference_device()
    source = resolve_source(name, log=log)
    tokenizer = load_tokenizer(source, log=log)
    model = _hub_errors(source, lambda: AutoModelForCausalLM.from_pretrained(
        source, dtype=dtype or inference_dtype(device), trust_remote_code=trust_remote_code, **_placement(device)))
    model.eval()
    return model, tokenizer


def load_with_adapter(adapter_dir: str | Path, base_name: str, *, base_source: str | None = None, log=print,
                      dtype=None, device: str | None = None):
    """A base model with a saved LoRA adapter (safetensors only) for inference; returns (model, tokenizer).
    ``base_source``: where the base was loaded from when the adapter was trained (used when it still exists);
    ``base_name``: the model's name, resolved again otherwise (a hub id, or the embedded default re-converted)."""
    import_stack()  # the stack in its order, once (predict, serve and eval may be the process's first use)
    from peft import PeftModel  # (after unsloth's patches)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or inference_device()
    source = base_source if base_source and Path(base_source).exists() else resolve_source(base_name, log=log)
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    ensure_pad_token(tokenizer)
    base = _hub_errors(source, lambda: AutoModelForCausalLM.from_pretrained(
        source, dtype=dtype or inference_dtype(device), **_placement(device)))
    model = PeftModel.from_pretrained(base, adapter_dir, use_safetensors=True)
    model.eval()
    return model, tokenizer
