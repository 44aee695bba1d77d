"""The one run config: a tree of dataclasses that the UI forms, the CLI flags and the saved ``run.json`` all
come from. Field names follow the guide and the libraries (PEFT's LoraConfig, TRL's SFTConfig); each field's
``help`` is the one-line explanation shown next to it in the UI and in ``--help``.

"The guide", here and throughout the code, is the Qwen + Unsloth LoRA fine-tuning guide the defaults come from
(``qwen_training_guide.md`` beside the project; README, "Words used here"): its recommendations are the presets,
defaults, warnings and help texts, except where a measurement here beat it (the help text then says so).

A field's kind comes from its annotation (``dict | None``: a dict that may be None). Metadata keys: ``help`` (text),
``label`` (the plain words the UI shows first; the field's name is the secondary text), ``choices`` (allowed
values), ``flag`` (a CLI alias), ``output`` (filled in by the studio, not an input: no flag, no form field),
``widget`` (a hint for the UI form: "model" for the model picker, "modules" for a multi-select of layer names),
``placeholder`` (an example shown in an empty form field), ``step`` (how far a number's arrows move).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.files import written_atomically

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLE_DATA = ASSETS / "sample_forum_posts.csv"
SAMPLE_RUBRIC = ASSETS / "sample_rubric.txt"
EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"
CURATED_MODELS = [
    EMBEDDED_MODEL,
    "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-3B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-14B-Instruct",
    "unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit", "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit",
    "unsloth/Qwen2.5-3B-Instruct-bnb-4bit", "unsloth/Qwen2.5-7B-Instruct-bnb-4bit",
    "unsloth/Qwen2.5-14B-Instruct-bnb-4bit",
    "Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B", "Qwen/Qwen3-4B-Instruct-2507",
]  # the model picker's list; any hub id or local folder works too
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION_ONLY = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _f(default, help: str, **meta):
    """A dataclass field with UI/CLI metadata; lists and dicts get fresh copies per instance."""
    meta["help"] = help
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataRecipe:
    """Where the rows come from and how they become training examples."""

    path: str = _f(str(SAMPLE_DATA), "Data file: CSV, TSV, JSONL, JSON, Parquet or Excel.", flag="--data",
                   label="Data file")
    text_column: str = _f("", "Column with the text to classify (empty: detected).", flag="--text-col",
                          label="Text column")
    label_column: str = _f("", "Column with the label (empty: detected).", flag="--label-col", label="Label column")
    header: str = _f("auto", "Does the first row name the columns?", choices=["auto", "yes", "no"],
                     label="First row names the columns")
    delimiter: str = _f("", "Column separator for text files (empty: detected; 'tab' for TSV).",
                        label="Column separator")
    label_codes: dict = _f({}, "Label → short code the model learns (the guide: 'Rules Question' → 'RQ'). "
                               "Empty: suggested from the labels.", label="Label codes")
    rubric: str = _f("", "System prompt / instruction: what each label means. Empty: a plain list of the codes "
                         "(past 16 classes a short instruction naming none: training teaches the codes).",
                     label="Rubric (system prompt)")
    prompt_format: str = _f("auto", "chat: the tokenizer's chat template (Instruct models); alpaca: the guide's "
                                    "Alpaca template + EOS (base models).", choices=["auto", "chat", "alpaca"],
                                    label="Prompt format")
    out_of_scope: str = _f("auto", "The class that means 'none of these' (out of scope): a label, 'auto' (a class "
                                   "named like oos, other or none, with 3 or more classes) or 'off'. With one, a "
                                   "reject rule answers it when no class is likely enough, fitted on held-out rows.",
                           label="Out-of-scope class")
    unsure: float = _f(0.0, "Let the classifier answer 'unsure' instead of guessing: a cut on its answer's "
                            "probability, fitted on held-out rows so that the texts it does answer are right at least "
                            "this often (0.95: 95 in 100); the others get 'unsure', for a person to look at. 0: every "
                            "text gets a class. With an out-of-scope class, that class is the answer instead.",
                       label="Answer 'unsure' unless right this often")
    val_fraction: float = _f(0.15, "Share of each class held out for Val A, the natural-ratio validation set.",
                             label="Share held out for Val A (natural mix)")
    val_b_per_class: int = _f(0, "Rows per class in Val B, the balanced validation set (0: as many as the "
                                 "minority class has in Val A).", label="Val B rows per class (balanced)")
    split_seed: int = _f(3407, "Seed for the split and the balancing: same seed, same sets.",
                         label="Seed for the split")
    balance: str = _f("70/30", "Class mix of the training set: oversample minorities to 70/30 or 50/50 "
                               "(the guide, for 90/10 data), or keep it natural.",
                      choices=["natural", "70/30", "50/50", "custom"], label="Class mix of the training rows")
    minority_share: float = _f(0.3, "For balance=custom: each minority class's share against the majority "
                                    "(0.3 = 70/30, 0.5 = 50/50).", label="Minority share (custom mix)")
    undersample_majority: bool = _f(False, "Balance by dropping majority rows instead of repeating minority rows.",
                                    label="Balance by dropping majority rows")
    drop_duplicates: bool = _f(True, "Drop rows whose text and label repeat an earlier row.",
                               label="Drop duplicate rows")
    max_classes: int = _f(1000, "More classes than this are refused. The label column itself is judged by its rows "
                                "per class: mostly one-row values are refused as a text or ID column.",
                          label="Most classes allowed")
    max_file_mb: float = _f(200.0, "Largest data file accepted, in MB.", flag="--max-upload-mb",
                            label="Largest file (MB)")
    sha256: str = _f("", "Hash of the data file the run used.", output=True)
    counts: dict = _f({}, "Class counts: input, train before/after balancing, Val A, Val B.", output=True)
    edits: dict = _f({}, "Label fixes this file carries from a review (the Labels tab): the source file, its hash and "
                         "each relabel or drop.", output=True)


@dataclass
class ModelSpec:
    """Which model to start from and how to load it."""

    name: str = _f(EMBEDDED_MODEL, "Hub id (e.g. Qwen/Qwen2.5-0.5B-Instruct), a local folder, or the embedded "
                                   "default that works offline.", flag="--model", widget="model", label="Model")
    max_seq_length: int = _f(512, "Max tokens per example (prompt + label). Higher = more memory and slower; "
                                  "longer texts are truncated with a warning.", label="Longest row in tokens")
    load_in_4bit: str = _f("auto", "Load the base weights in 4-bit (bitsandbytes, CUDA only): the guide's lever for "
                                   "tight memory. auto: 16-bit when the 16-bit run fits the card by 'Will it fit?', "
                                   "4-bit only when just 4-bit fits; measured on the embedded model's real weights "
                                   "(H200), 16-bit trained 10% faster and scored 0.015–0.059 macro-F1 higher "
                                   "(docs/benchmarks.md). Off on a CPU.", choices=["auto", "true", "false"],
                           label="Load the model in 4-bit (GPU)", gpu_only=True)
    dtype: str = _f("auto", "Compute dtype; auto picks bfloat16 on GPUs that support it, else float16; on a CPU, "
                            "float32 weights with bfloat16 compute where the CPU has AVX-512 (native with AVX-512 BF16 "
                            "or AMX), else float32.", choices=["auto", "bfloat16", "float16", "float32"],
                    label="Number format", advanced=True)
    backend: str = _f("auto", "auto: Unsloth when CUDA and unsloth are available, else transformers + peft.",
                      choices=["auto", "unsloth", "transformers"], label="Training engine", advanced=True)
    trust_remote_code: bool = _f(False, "Run Python code shipped with a LOCAL model folder (custom architectures). "
                                        "Only for folders you trust; never allowed for hub ids.",
                                        label="Run code shipped with a local model folder", advanced=True)


@dataclass
class LoraSpec:
    """The LoRA adapter (PEFT). The guide's notebook values are the defaults."""

    r: int = _f(16, "LoRA rank: how many 'edit channels' the adapter has. Higher = more capacity and memory.",
                label="LoRA rank")
    lora_alpha: int = _f(16, "Scaling of the adapter's contribution. Too high can destabilise; too low underfits.",
                         label="LoRA scale (alpha)")
    lora_dropout: float = _f(0.0, "Dropout on the LoRA path. 0 is fastest; 0.05 can curb overfitting on "
                                  "small datasets.", label="LoRA dropout")
    bias: str = _f("none", "Which biases to train; 'none' is fewest parameters and fastest.",
                   choices=["none", "all", "lora_only"], label="Train biases", advanced=True)
    target_modules: list = _f(ALL_PROJECTIONS, "Layers that get adapters. Attention + MLP is best quality; "
                                               "attention-only (q,k,v,o) saves memory.", widget="modules",
                                               label="Layers with adapters")
    use_gradient_checkpointing: str = _f("auto", "Trade compute for memory (about 30% more compute). 'unsloth' is "
                                                 "Unsloth's memory-optimised variant (plain checkpointing elsewhere). "
                                                 "auto: off when the estimate says the run fits without it (on a "
                                                 "GPU under 85% of the card, on a CPU under half the RAM), else on "
                                                 "('unsloth' on a GPU).",
                                         choices=["auto", "unsloth", "true", "false"],
                                         label="Save memory by recomputing (checkpointing)")
    random_state: int = _f(3407, "Seed for the adapter's initial weights.", label="Seed for the adapter", advanced=True)
    use_rslora: bool = _f(False, "Rank-stabilised LoRA: keeps higher ranks 'audible'. Recommended at r ≥ 32.",
                          label="Rank-stabilised LoRA (rsLoRA)")
    loftq_config: dict | None = _f(None, "LoftQ initialisation (e.g. {\"loftq_bits\": 4}) to reduce quantisation "
                                         "error; causes a one-time memory spike at start.",
                                      placeholder='{"loftq_bits": 4}', label="LoftQ initialisation", advanced=True)


@dataclass
class TrainSpec:
    """The trainer (TRL SFTConfig names). One step = one optimizer update. Settings at 0 or -1 are decided when the
    run starts, from the device, the model's size and the data (studio/train/recipe.py), and shown before Start."""

    per_device_train_batch_size: int = _f(0, "Rows per forward/backward pass (micro-batch); first lever when memory "
                                             "is tight. 0: auto (on a CPU 16, fewer when the RAM or padding "
                                             "says so; on a GPU the largest of 64/32/16/8 that fits in 85% of it).",
                                             label="Rows per step on the device (micro-batch)")
    gradient_accumulation_steps: int = _f(0, "Micro-batches per optimizer step; raises the rows per step without "
                                             "memory. 0: auto (16 rows per step, or one micro-batch if larger).",
                                             label="Micro-batches per update (accumulation)")
    warmup_steps: int = _f(5, "Steps over which the learning rate ramps up; 1–5% of all steps.", label="Warm-up steps",
                           advanced=True)
    max_steps: int = _f(-1, "Optimizer steps to run; -1 uses num_train_epochs (and the time budget) instead.",
                        label="Updates to run (steps)")
    num_train_epochs: float = _f(2.0, "Full passes over the training set (used when max_steps is -1).",
                                 label="Passes over the data (epochs)")
    learning_rate: float = _f(-1.0, "Peak learning rate. -1: auto by model size (1e-3 under 300M parameters, 5e-4 "
                                    "under 1.2B, else the guide's 2e-4; 1e-4–1.5e-4 with rsLoRA at r=32).",
                              label="Learning rate", step=1e-4)
    optim: str = _f("adamw_8bit", "Optimizer. adamw_8bit saves memory (CUDA); falls back to adamw_torch on CPU.",
                    choices=["adamw_8bit", "adamw_torch", "adamw_torch_fused", "paged_adamw_8bit", "sgd"],
                    label="Optimizer", advanced=True)
    lr_scheduler_type: str = _f("linear", "How the learning rate decays after warmup.",
                                choices=["linear", "cosine", "constant", "constant_with_warmup"],
                                label="Learning-rate schedule", advanced=True)
    weight_decay: float = _f(0.001, "Weight decay on the adapter weights.", label="Weight decay", advanced=True)
    logging_steps: int = _f(1, "Record loss, learning rate and memory every N steps.", label="Log every N steps",
                            advanced=True)
    seed: int = _f(3407, "Trainer seed (data order, dropout).", label="Seed for training", advanced=True)
    packing: bool = _f(False, "Pack several short rows into one sequence: faster on short texts, can change "
                              "behaviour; keep off at first.", label="Pack short rows together", advanced=True)
    objective: str = _f("codes+next_token", "What the loss rewards, at the answer only: 'codes' = choosing the "
                                            "right class among the codes (what the scorer measures), 'next_token' = "
                                            "writing the code (what generation and GGUF need); the default, both.",
                        choices=["codes+next_token", "next_token", "codes"], label="What the loss rewards",
                        advanced=True)
    share_prompt_prefix: bool = _f(True, "Run the rubric (the same in every row) once per micro-batch instead of once "
                                         "per row: same result, less compute. Used where the backend allows it "
                                         "(transformers, one process, no checkpointing).",
                                         label="Run the rubric once per micro-batch", advanced=True)
    save_steps: int = _f(0, "Also save a checkpoint every N steps (0: by time only, checkpoint_minutes); resume "
                            "continues from the last one.", label="Checkpoint every N steps", advanced=True)
    checkpoint_minutes: float = _f(1.0, "Save a checkpoint after this many minutes of training since the last one "
                                        "(the newest two are kept): a crash costs at most this much training "
                                        "(0: by steps only).", label="Checkpoint every N minutes", advanced=True)
    eval_steps: int = _f(-1, "Evaluate on a sample of Val A every N steps (0: off; -1: about 6 times per run); "
                             "adds macro-F1 and minority recall to the live charts and drives early stopping.",
                             label="Validate every N steps")
    eval_max_rows: int = _f(150, "Val A rows used by the periodic evaluation (a stratified sample).",
                            label="Rows per validation", advanced=True)
    early_stopping_patience: int = _f(3, "Stop after this many periodic evaluations without a better Val A "
                                         "macro-F1 (0: never stop early). The adapter saved, evaluated and exported "
                                         "is the last one, unless an earlier one is clearly better on the Val A "
                                         "sample (in 95% of paired resamples of its rows): keeping the best sample "
                                         "figure kept noise as often as a better adapter (docs/benchmarks.md).",
                                         label="Stop after N validations without progress")
    time_budget_minutes: float = _f(-1.0, "Train for at most this many minutes (0: no limit; -1: auto, 7 on a CPU "
                                          "and none on a GPU). The steps are planned from the measured step time "
                                          "and re-planned as the speed changes, so the run and its learning-rate "
                                          "schedule end on time.", label="Time budget (minutes)")


@dataclass
class RunConfig:
    """Everything a run needs; saved as ``run.json`` and loaded back into the same object."""

    name: str = _f("", "Run name (folder under runs/); empty: model + time.", flag="--name", label="Run name")
    data: DataRecipe = field(default_factory=DataRecipe)
    model: ModelSpec = field(default_factory=ModelSpec)
    lora: LoraSpec = field(default_factory=LoraSpec)
    train: TrainSpec = field(default_factory=TrainSpec)

    # ---- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        return _build(cls, data, "run config")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StudioError(f"Config file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise StudioError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
        # run.json files written by the studio hold the config under "config" beside other run facts.
        return cls.from_dict(data.get("config", data) if isinstance(data, dict) else data)

    def save(self, path: str | Path) -> None:
        with written_atomically(path) as tmp:
            tmp.write_text(self.to_json(), encoding="utf-8")

    def replace(self, overrides: dict) -> "RunConfig":
        """A copy with nested overrides applied, e.g. {"lora": {"r": 32}}."""
        merged = self.to_dict()
        for section, values in overrides.items():
            if isinstance(values, dict) and isinstance(merged.get(section), dict):
                merged[section].update(values)
            else:
                merged[section] = values
        return RunConfig.from_dict(merged)


SECTIONS = {"data": DataRecipe, "model": ModelSpec, "lora": LoraSpec, "train": TrainSpec}


def _build(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise StudioError(f"{where}: expected an object, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise StudioError(f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}. "
                          f"Known: {', '.join(fields)}.")
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        if name in SECTIONS and cls is RunConfig:
            kwargs[name] = _build(SECTIONS[name], value, name)
        else:
            kwargs[name] = coerce(f, value, f"{where}.{name}" if where != "run config" else name)
    return cls(**kwargs)


KINDS = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


def setting_label(key: str) -> str:
    """The words a setting goes by on the page ("train.learning_rate" → "Learning rate"); the key itself when it
    has none."""
    section, _, name = key.partition(".")
    holder = SECTIONS.get(section)
    if holder is None or not name:
        return key
    found = next((f for f in dataclasses.fields(holder) if f.name == name), None)
    return (found.metadata.get("label") if found is not None else None) or key


def field_kind(f: dataclasses.Field) -> type:
    """The plain Python type of a field, from its annotation (``dict | None`` → dict): used for coercion, CLI flags
    and form widgets."""
    return KINDS[str(f.type).split("|")[0].strip()]


def field_optional(f: dataclasses.Field) -> bool:
    """Whether the field may be None (``X | None``): an empty value then means None."""
    return "None" in [part.strip() for part in str(f.type).split("|")]


def coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    """Turn a JSON/CLI/UI value into the field's type, or raise a StudioError that names the setting."""
    kind = field_kind(f)
    choices = f.metadata.get("choices")
    try:
        if value is None and field_optional(f):
            return None
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = lowered in ("true", "1", "yes")
            value = bool(value)
        elif kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        elif kind is float:
            value = float(value)
            if math.isnan(value):
                raise ValueError
        elif kind is str:
            if value is True or value is False:
                value = str(value).lower()
            value = "" if value is None else str(value)
        elif kind is list:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            value = [str(v) for v in value]
        elif kind is dict:
            if isinstance(value, str):
                value = json.loads(value) if value.strip() else (None if field_optional(f) else {})
            if value is not None and not isinstance(value, dict):
                raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError):
        raise StudioError(f"Setting '{where}' expects {kind.__name__}, got {value!r}.") from None
    if choices and value not in choices:
        raise StudioError(f"Setting '{where}' must be one of {', '.join(map(str, choices))} (got {value!r}).")
    return value


def input_fields(cls) -> list[dataclasses.Field]:
    """The fields a user sets (not the studio's outputs), in declaration order."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("output")]


# ---- presets (the guide, §9) --------------------------------------------------------------------------------
PRESETS: dict[str, dict] = {
    "Guide notebook defaults": {
        "description": "The Unsloth Qwen2.5 notebook's settings: r=16, alpha 16, batch 2 × 4, lr 2e-4, adamw_8bit.",
        "overrides": {"lora": {"r": 16, "lora_alpha": 16, "lora_dropout": 0.0, "use_rslora": False,
                               "target_modules": ALL_PROJECTIONS},
                      "train": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
                                "learning_rate": 2e-4, "optim": "adamw_8bit", "warmup_steps": 5}},
    },
    "Memory tight": {
        "description": "4-bit base, Unsloth gradient checkpointing, batch 1 × 8, adamw_8bit, r=16. If still tight: "
                       "lower max_seq_length, then attention-only target modules.",
        "overrides": {"model": {"load_in_4bit": "true"},
                      "lora": {"r": 16, "lora_alpha": 16, "use_gradient_checkpointing": "unsloth",
                               "use_rslora": False},
                      "train": {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 8,
                                "optim": "adamw_8bit"}},
    },
    "Memory tight + r=32 (rsLoRA)": {
        "description": "As 'Memory tight' with r=32 and rsLoRA, alpha 16 (then 24 → 32 if too weak), lr 1e-4.",
        "overrides": {"model": {"load_in_4bit": "true"},
                      "lora": {"r": 32, "lora_alpha": 16, "use_rslora": True, "use_gradient_checkpointing": "unsloth"},
                      "train": {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 8,
                                "optim": "adamw_8bit", "learning_rate": 1e-4}},
    },
    "Small dataset (~2k rows)": {
        "description": "Instruct model, short label codes, lora_dropout 0.05 against overfitting.",
        "overrides": {"lora": {"lora_dropout": 0.05}},
    },
    "90/10 imbalance": {
        "description": "Train on 70/30 (oversampled minority); watch minority recall on Val A (natural) and Val B "
                       "(balanced) during training.",
        "overrides": {"data": {"balance": "70/30"}, "train": {"eval_steps": 20}},
    },
}


def apply_preset(config: RunConfig, name: str) -> RunConfig:
    if name not in PRESETS:
        raise StudioError(f"Unknown preset '{name}'. Presets: {', '.join(PRESETS)}.")
    return config.replace(PRESETS[name]["overrides"])


def four_bit(model: ModelSpec) -> bool | None:
    """load_in_4bit as a decision: True or False, None while it is auto (studio/estimate/recipe.py decides it by
    memory; a run's resolved config always holds "true" or "false")."""
    return {"true": True, "false": False}.get(model.load_in_4bit)


def effective_checkpointing(choice: str, device: str) -> str:
    """The gradient checkpointing a run uses when no memory estimate decides (studio/estimate/recipe.py decides when
    one does): 'auto' is Unsloth's variant on a GPU and off on a CPU, where compute is what limits speed."""
    if choice == "auto":
        return "unsloth" if device == "cuda" else "false"
    return choice


MAX_LEARNING_RATE = 0.1


def rows_per_step(train: TrainSpec, gpus: int = 1) -> int:
    """The guide: rows per optimizer step = batch × grad_accum × GPUs."""
    return train.per_device_train_batch_size * train.gradient_accumulation_steps * max(1, gpus)


def total_steps(train: TrainSpec, train_rows: int, gpus: int = 1) -> int:
    if train.max_steps > 0:
        return train.max_steps
    return max(1, math.ceil(math.ceil(train_rows / (train.per_device_train_batch_size * max(1, gpus)))
                            / train.gradient_accumulation_steps * train.num_train_epochs))


def remote_code_refusal(model: ModelSpec, source: str) -> str | None:
    """Why trust_remote_code cannot be granted for ``source`` (None when it can): only a ticked, local folder runs
    its own code; code from a hub id would run unseen on this machine."""
    if model.trust_remote_code and not Path(source).expanduser().is_dir():
        return (f"trust_remote_code is only allowed for a local model folder, not for '{model.name}': download the "
                "model, read its code, and point the studio at the folder.")
    return None


def validate_config(config: RunConfig) -> list[str]:
    """Raise StudioError for settings that cannot work; return the guide's warnings for risky ones. The warnings that
    depend on the run's length (warm-up, passes over the data) come with the resolved recipe:
    ``studio.estimate.recipe.step_warnings``."""
    lora, train, model = config.lora, config.train, config.model
    refusal = remote_code_refusal(model, model.name)
    checks = [
        (lora.r >= 1, "r (LoRA rank) must be at least 1; 8–64 is typical."),
        (lora.lora_alpha >= 1, "lora_alpha must be at least 1; start at 16."),
        (0 <= lora.lora_dropout < 1, "lora_dropout must be between 0 and 1; 0 or 0.05 is typical."),
        (bool(lora.target_modules), "target_modules is empty: pick at least the attention projections "
                                    "(q_proj, k_proj, v_proj, o_proj)."),
        (train.per_device_train_batch_size >= 0, "per_device_train_batch_size must be at least 1 (or 0: auto)."),
        (train.gradient_accumulation_steps >= 0, "gradient_accumulation_steps must be at least 1 (or 0: auto)."),
        (train.learning_rate != 0, "learning_rate must be above 0 (or -1: auto); 2e-4 is the guide's LoRA "
                                   "default."),
        (train.learning_rate <= MAX_LEARNING_RATE, f"learning_rate {train.learning_rate:g} would wreck the model's "
                                                   f"weights in a few steps; LoRA uses 1e-4 to 1e-3 (or -1: auto)."),
        (train.eval_steps >= -1 and train.early_stopping_patience >= 0 and train.time_budget_minutes >= -1,
         "eval_steps, early_stopping_patience and time_budget_minutes cannot be below -1, 0 and -1."),
        (train.max_steps > 0 or train.num_train_epochs > 0, "Set max_steps above 0, or max_steps -1 with "
                                                            "num_train_epochs above 0."),
        (train.max_steps != 0, "max_steps 0 trains nothing: set a number of steps, or -1 to use epochs."),
        (train.warmup_steps >= 0, "warmup_steps cannot be negative."),
        (train.logging_steps >= 1, "logging_steps must be at least 1."),
        (model.max_seq_length >= 32, "max_seq_length below 32 tokens cannot hold a prompt and a label."),
        (refusal is None, refusal),
        (train.save_steps >= 0, "save_steps cannot be negative."),
        (train.checkpoint_minutes >= 0, "checkpoint_minutes cannot be negative."),
    ]
    for ok, message in checks:
        if not ok:
            raise StudioError(message)
    warnings = []
    if lora.r >= 32 and not lora.use_rslora:
        warnings.append(f"r={lora.r}: rsLoRA (use_rslora) is recommended at r ≥ 32 so the higher rank stays "
                        "'audible'; start with lora_alpha 16.")
    if lora.use_rslora and lora.r <= 16:
        warnings.append("rsLoRA at r ≤ 16 rarely helps; the guide keeps it for r ≥ 32.")
    if lora.use_rslora and (lora.lora_alpha > 32 or train.learning_rate > 1.5e-4):
        warnings.append("rsLoRA makes the adapter 'louder': start at lora_alpha 16 and learning_rate 1e-4–1.5e-4.")
    if lora.loftq_config and four_bit(model) is not False:
        warnings.append("LoftQ with a 4-bit base causes a one-time memory spike while the adapter is initialised; "
                        "avoid it when you are already close to out-of-memory.")
    if lora.lora_alpha > 4 * lora.r:
        warnings.append(f"lora_alpha {lora.lora_alpha} is far above r={lora.r}: training may be unstable.")
    if train.learning_rate > 2e-3:
        warnings.append(f"learning_rate {train.learning_rate:g} is high for LoRA: the guide's default is 2e-4, and "
                        "1e-3 is the most that measured well (on a 135M model).")
    return warnings
