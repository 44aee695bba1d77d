"""Export a trained run: the classifier bundle, adapters, merged 16-bit, merged 4-bit, GGUF (f16, q8_0, q4_k_m).

Every export carries the label map (code → label), the rubric, the threshold, the run config and a model card
(README.md) with the evaluation table; GGUF exports also get an Ollama Modelfile. Each is written to a temporary
folder, reloaded and checked to predict the same labels as the trained model on a sample of validation rows, and
renamed into place only when complete.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.classifier.bundle import Bundle, write_bundle
from studio.classifier.candidates import NAMES
from studio.classifier.choice import applied
from studio.classifier.rules import CARD_RULE_NOTE, Sources, card_rule
from studio.classifier.scoring import LabelScorer
from studio.config import EMBEDDED_MODEL
from studio.errors import StudioError, is_disk_full
from studio.evaluate.saved_run import prepare_for_run
from studio.evaluate.verdicts import judged, lead_figures
from studio.export import gguf
from studio.export.formats import FORMAT_HELP, FORMATS
from studio.machine import has_module
from studio.models.embedded import HUB_ID
from studio.models.loading import load_base, load_with_adapter
from studio.models.trained import load_run_model
from studio.files import write_json_atomic
from studio.runs.folder import (PICKLE_WEIGHTS, RunDir, minority_label, read_adapter_card, require_safetensors,
                                sanitize_name, write_adapter_card)
from studio.runs.jobs import refuse_while_training
from studio.text import code_span, escape_markdown, page_line

AGREEMENT_TARGET = {"classifier": 1.0, "adapters": 1.0, "merged_16bit": 0.98, "merged_4bit": 0.9, "gguf_f16": 0.98,
                    "gguf_q8_0": 0.98, "gguf_q4_k_m": None}  # q4_k_m: reported, no target
VERIFY_ROWS = 64


@dataclass
class ExportResult:
    format: str
    path: Path
    files: list[str]
    agreement: float | None
    verified_rows: int
    target: float | None
    seconds: float
    commands: str
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.target is None or (self.agreement is not None and self.agreement >= self.target)

    def to_dict(self) -> dict:
        return {"format": self.format, "path": str(self.path), "files": self.files, "agreement": self.agreement,
                "verified_rows": self.verified_rows, "target": self.target, "passed": self.passed,
                "seconds": round(self.seconds, 1), "commands": self.commands, "warnings": self.warnings}


def export_run(run_dir: str | Path, fmt: str, out_dir: str | Path | None = None, runs_dir: str | Path = "runs", *,
               overwrite: bool = False, verify: bool = True, loaded=None, use: str | None = None,
               log=print) -> ExportResult:
    """Write ``fmt`` into ``out_dir`` (default RUN/exports/FORMAT), reload it and compare its labels with the
    run's; ``use``: the candidate a classifier bundle carries as in use (default: the run's)."""
    if fmt not in FORMATS:
        raise StudioError(f"Unknown export format '{fmt}'. Formats: {', '.join(FORMATS)}.")
    run = RunDir.open(run_dir, runs_dir)
    first = fmt == "classifier" and run.first_only()  # the classic model alone, while the LLM trains
    if not first:
        refuse_while_training(run, "export it")
    card = first_card(run) if first else run.adapter_card()
    if fmt == "merged_4bit":
        _require_cuda_bnb()
    if fmt.startswith("gguf"):
        gguf.ensure_ready()
    target = Path(out_dir) if out_dir else run.path / "exports" / fmt
    if out_dir and target.exists() and any(target.iterdir()) and not overwrite:
        raise StudioError(f"{target} already exists and is not empty; choose another folder or pass --overwrite.")
    started = time.time()
    model, tokenizer, _ = (None, None, None) if first else loaded or load_run_model(run, log=log)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        write = {"adapters": _write_adapters, "merged_16bit": _write_merged, "merged_4bit": _write_merged_4bit,
                 "classifier": functools.partial(_write_classifier, use=use)}
        if fmt.startswith("gguf"):
            artifact = _write_gguf(run, model, tokenizer, card, fmt, tmp, log)
        else:
            artifact = write[fmt](run, model, tokenizer, tmp, log)
        agreement, rows = (None, 0)
        if verify:
            log("Checking the export predicts the same labels as the trained model...")
            agreement, rows = (_verify_bundle(run, (model, tokenizer, card), tmp, use) if fmt == "classifier" else
                               _verify(run, model, tokenizer, card, fmt, tmp, artifact))
        warnings = _warnings(run, fmt, agreement, rows)
        commands = run_commands(fmt, target, artifact, run.name, card)
        _write_metadata(run, card, fmt, tmp, agreement, rows, commands)
        files = sorted({str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()} | {"export.json"})
        result = ExportResult(fmt, target, files, agreement, rows, AGREEMENT_TARGET[fmt], time.time() - started,
                              commands, warnings)
        write_json_atomic(tmp / "export.json", result.to_dict())  # last file written: inside, before the rename
        _move_into_place(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc, target.parent if target.parent.exists() else None):
            raise StudioError(f"The disk holding {target.parent} is full: the {fmt} export could not be written "
                              "and its partial files were removed" + (" (the previous export there is untouched)"
                                                                      if target.exists() else "") +
                              ". Free some space and export again.") from None
        raise
    log(f"Exported {fmt} to {target}" + (f" ({agreement:.1%} label agreement on {rows} rows)" if rows else ""))
    return result


def _warnings(run: RunDir, fmt: str, agreement: float | None, rows: int) -> list[str]:
    warnings = []
    wanted = AGREEMENT_TARGET[fmt]
    if agreement is not None and wanted is not None and agreement < wanted:
        warnings.append(f"Only {agreement:.1%} of {rows} validation rows get the same label as the trained model "
                        f"(target {wanted:.0%}). Prefer a higher-precision format.")
    in_use = (run.classifier() or {}).get("use", "llm")
    if in_use != "llm" and fmt != "classifier":
        warnings.append(f"This {fmt} export is the fine-tuned LLM alone, while the run's classifier in use is "
                        f"{NAMES[in_use]} (it did better on held-out rows): the classifier bundle carries that.")
    return warnings


def _require_cuda_bnb() -> None:
    import torch  # (loaded with the model already)

    if not torch.cuda.is_available() or not has_module("bitsandbytes"):
        raise StudioError("merged_4bit needs an NVIDIA GPU with bitsandbytes (pip install -r requirements-gpu.txt). "
                          "On this machine, export merged_16bit, or gguf_q4_k_m for a small 4-bit file.")


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder into place; a previous export of the same target is replaced only now."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{int(time.time())}")
        target.rename(old)
    tmp.rename(target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


# ---- writers ------------------------------------------------------------------------------------------------
def _write_adapters(run: RunDir, model, tokenizer, out: Path, log) -> str:
    for item in run.adapter.iterdir():
        if item.is_file():
            shutil.copy2(item, out / item.name)
    return "adapter_model.safetensors"


def _write_classifier(run: RunDir, model, tokenizer, out: Path, log, use: str | None = None) -> str:
    """The classifier bundle: the adapter (with its card), the decision, the classic model when it is in use (a
    first classifier's bundle, the LLM still training: the classic model alone)."""
    if run.has_adapter_card():
        shutil.copytree(run.adapter, out / "adapter", ignore=shutil.ignore_patterns(*PICKLE_WEIGHTS))
    record = write_bundle(out, run, use)
    log(f"Classifier bundle: {record['info']['classifier']} in use, labels {', '.join(record['labels'])}")
    return "classifier.json"


def _merged_model(model):
    """A plain transformers model with the adapter merged in (a copy: the caller's model keeps its adapter)."""

    return copy.deepcopy(model).merge_and_unload()


def _write_merged(run: RunDir, model, tokenizer, out: Path, log) -> str:
    import torch  # (torch: not at the page's start)

    if hasattr(model, "save_pretrained_merged"):  # Unsloth's own merge
        model.save_pretrained_merged(str(out), tokenizer, save_method="merged_16bit")
        return "model.safetensors"
    log("Merging the adapter into the base weights...")
    merged = _merged_model(model).to(torch.float16)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return "model.safetensors"


def _write_merged_4bit(run: RunDir, model, tokenizer, out: Path, log) -> str:
    import torch  # (torch: not at the page's start)
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if hasattr(model, "save_pretrained_merged") and getattr(model, "is_loaded_in_4bit", False):
        model.save_pretrained_merged(str(out), tokenizer, save_method="merged_4bit_forced")
        return "model.safetensors"
    # A 16-bit base (Unsloth refuses merged_4bit there): merge in 16-bit, then quantise with bitsandbytes.
    with tempfile.TemporaryDirectory() as tmp16:
        _write_merged(run, model, tokenizer, Path(tmp16), log)
        log("Quantising the merged model to 4-bit (bitsandbytes nf4)...")
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model4 = AutoModelForCausalLM.from_pretrained(tmp16, quantization_config=quant, device_map={"": 0})
        model4.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return "model.safetensors"


def _write_gguf(run: RunDir, model, tokenizer, card: dict, fmt: str, out: Path, log) -> str:
    kind = gguf.GGUF_TYPES[fmt]
    name = f"{sanitize_name(run.name)}-{kind}.gguf"
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        _write_merged(run, model, tokenizer, work / "merged", log)
        if kind == "q4_k_m":
            gguf.convert(work / "merged", work / "f16.gguf", "f16", log=log)
            log("Quantising to q4_k_m with llama.cpp...")
            gguf.quantize(work / "f16.gguf", out / name, "q4_k_m")
        else:
            gguf.convert(work / "merged", out / name, kind, log=log)
    (out / "Modelfile").write_text(gguf.modelfile(name, card["rubric"], card["prompt_format"],
                                                  getattr(tokenizer, "chat_template", None)), encoding="utf-8")
    return name


# ---- verification -------------------------------------------------------------------------------------------
def _verify(run: RunDir, model, tokenizer, card: dict, fmt: str, folder: Path, artifact: str) -> tuple[float, int]:
    """Fraction of (up to VERIFY_ROWS) Val A rows where the export predicts the trained model's label."""
    prepared, _ = prepare_for_run(run, tokenizer)
    frame = prepared.split.val_a
    if len(frame) > VERIFY_ROWS:
        frame = frame.sample(n=VERIFY_ROWS, random_state=0)
    texts = list(frame["text"])
    scorer = LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format)
    rule, task = card_rule(card, scorer.labels, prepared.table.minority_label, run.threshold())
    reference = applied(rule, Sources(scorer.score(texts).probs, None), task).decided
    exported = applied(rule, Sources(_export_probs(fmt, folder, artifact, run, prepared, texts, scorer), None),
                       task).decided
    return float(np.mean(reference == exported)), len(texts)


def first_card(run: RunDir) -> dict:
    """What a first classifier's bundle says in place of an adapter card: its labels, codes and rubric."""
    decision = run.classifier()
    return {"label_codes": decision["codes"], "rubric": decision["first"].get("rubric", ""),
            "base_model": run.config().model.name, "classic_only": True}


def _verify_bundle(run: RunDir, loaded: tuple, folder: Path, use: str | None) -> tuple[float, int]:
    """Fraction of (up to VERIFY_ROWS) Val A rows where the bundle, loaded on its own (its adapter, its classic
    model, its rules), predicts the run's label."""
    from studio.classifier.engine import RunClassifier  # (the bundle as a user loads it)

    prepared, _ = prepare_for_run(run, loaded[1])
    frame = prepared.split.val_a
    texts = list(frame.sample(n=min(len(frame), VERIFY_ROWS), random_state=0)["text"])
    reference = RunClassifier.of_run(run, use, loaded=loaded).predict_frame(texts)["predicted_label"]
    bundle = Bundle(folder)
    exported = RunClassifier.of_run(bundle, loaded=lambda: load_run_model(bundle, log=lambda m: None))
    return float(np.mean(reference.to_numpy() == exported.predict_frame(texts)["predicted_label"].to_numpy())), \
        len(texts)


def _export_probs(fmt, folder: Path, artifact: str, run: RunDir, prepared, texts, scorer: LabelScorer):
    if fmt.startswith("gguf"):
        reader = gguf.GGUFScorer(folder / artifact, scorer.code_ids,
                                 n_ctx=run.config().model.max_seq_length + 16)
        try:
            return reader.probs([scorer.prompt_ids(t) for t in texts])
        finally:
            reader.close()
    require_safetensors(folder)
    device = scorer.model.device.type
    if fmt == "adapters":  # compared like with like: the trained model's own dtype and device
        card = run.adapter_card()
        model, tokenizer = load_with_adapter(folder, card.get("base_model") or run.config().model.name,
                                             base_source=card.get("base_source"), dtype=scorer.model.dtype,
                                             device=device, log=lambda m: None)
    else:  # merged exports load as plain models (merged_4bit carries its own quantisation settings)
        model, tokenizer = load_base(str(folder), device=device, log=lambda m: None)
    reloaded = LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format)
    return reloaded.score(texts).probs


# ---- what travels with every export --------------------------------------------------------------------------
def _write_metadata(run: RunDir, card: dict, fmt: str, out: Path, agreement, rows, commands: str) -> None:
    record = run.record()
    codes = card["label_codes"]
    write_json_atomic(out / "labels.json", {"code_to_label": {c: lb for lb, c in codes.items()},
                                            "label_to_code": codes, "threshold": record.get("threshold"),
                                            "minority_label": minority_label(record),
                                            "class_prior": card.get("class_prior"),
                                            "temperature": card.get("temperature", 1.0),
                                            "how_to_use": CARD_RULE_NOTE})
    (out / "rubric.txt").write_text(card["rubric"] + "\n", encoding="utf-8")
    run.copy_record_to(out, ("config", "backend", "versions", "device", "threshold", "rubric", "prompt_format"))
    if fmt != "classifier" and read_adapter_card(out) is None:  # (a bundle's card is in adapter/)
        write_adapter_card(out, {**card, "threshold": record.get("threshold"), "format": fmt})
    (out / "README.md").write_text(model_card(run, record, card, fmt, agreement, rows, commands), encoding="utf-8")


def model_card(run: RunDir, record: dict, card: dict, fmt: str, agreement, rows, commands: str) -> str:
    config = record.get("config", {})
    lora, train = config.get("lora", {}), config.get("train", {})

    def used(key):  # the value the run trained with (auto settings decided at start), else the setting
        return (record.get("resolved") or {}).get(key, train.get(key))

    what = (f"The first classifier of a run that fine-tunes `{card.get('base_model')}`: the classic model (TF-IDF + "
            "logistic regression), in use while the LLM trains." if card.get("classic_only") else
            f"LoRA fine-tune of `{card.get('base_model')}` that answers with a label code.")
    lines = [f"# {run.name}: text classifier", "", f"{what} Export format: **{fmt}** ({FORMAT_HELP[fmt]}).", "",
             "## Labels", "", "| code | label |", "|---|---|"]
    md = escape_markdown  # labels, codes and the rubric come from the user's file: text, never markup
    lines += [f"| {code_span(c)} | {md(lb)} |" for lb, c in card["label_codes"].items()]
    if record.get("threshold") is not None:
        lines += ["", f"Decision threshold: predict **{md(minority_label(record))}** when its probability "
                      f"is at least {record['threshold']}."]
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", card["rubric"])), default=0))
    lines += ["", "## Rubric (system prompt)", "", fence, card["rubric"], fence, "", "## Evaluation", ""]
    report = run.evaluation()
    if report:
        lines += ["| set | rows | accuracy | macro-F1 | minority recall | untrained macro-F1 | classic macro-F1 |",
                  "|---|---|---|---|---|---|---|"]
        figures = lead_figures(report)
        for name, title in (("val_a", "Val A (natural ratio)"), ("val_b", "Val B (balanced)")):
            m = figures[name]
            base = report.get("baseline", {}).get(name, {}).get("macro_f1")
            classic = (report.get("classic_baseline") or {}).get(name, {}).get("macro_f1")
            lines.append(f"| {title} | {m['n']} | {_f(m['accuracy'])} | {_f(m['macro_f1'])} | "
                         f"{_f(m['minority_recall'])} | {_f(base)} | {_f(classic)} |")
        lines += _candidate_lines(report, fmt)
        majority = (report.get("majority_baseline") or {}).get("val_a")
        if majority:
            lines += ["", f"Always answering the majority label '{md(report['majority_baseline']['label'])}' "
                          f"scores accuracy {_f(majority['accuracy'])} on Val A."]
        lines += [""] + [page_line(text) for _, text in judged(report)]  # the words of the CLI and the Evaluate tab
        cal = report.get("calibration") or {}
        if cal.get("before", {}).get("ece") is not None:
            lines += ["", f"Calibration (Val A, held-out halves): expected calibration error "
                          f"{cal['before']['ece']:.3f} → {cal['after']['ece']:.3f} with temperature "
                          f"{cal['temperature']:.2f}."]
        lines += ["", "| label | precision (Val A) | recall (Val A) | F1 (Val A) | support |", "|---|---|---|---|---|"]
        for lb, m in figures["val_a"]["per_class"].items():
            lines.append(f"| {md(lb)} | {_f(m['precision'])} | {_f(m['recall'])} | {_f(m['f1'])} | {m['support']} |")
    else:
        lines.append("Not evaluated yet (`python -m studio eval RUN` writes the table used here).")
    if rows:
        lines += ["", f"Export check: this file predicts the trained model's label on {agreement:.1%} of {rows} "
                      "validation rows."]
    lines += ["", "## Training", "",
              f"r={lora.get('r')}, lora_alpha={lora.get('lora_alpha')}, rsLoRA={lora.get('use_rslora')}, "
              f"target modules {', '.join(lora.get('target_modules', []))}; "
              f"{used('max_steps')} steps, batch {used('per_device_train_batch_size')} × "
              f"{used('gradient_accumulation_steps')}, lr {used('learning_rate')}, "
              f"backend {record.get('backend', {}).get('name')}. Full settings in `run.json`.", "",
              "Probabilities: " + CARD_RULE_NOTE + " (values in `labels.json`).", "",
              "## How to run", "", commands]
    return "\n".join(lines) + "\n"


def _candidate_lines(report: dict, fmt: str) -> list[str]:
    """The three candidates beside each other (Val A cross-fitted), the one in use, and what this export holds."""
    candidates, chosen = report.get("candidates"), report.get("chosen")
    if not candidates or not chosen or report.get("first"):
        return []
    lines = ["", "The run's three candidate classifiers (Val A: each half decided by rules fitted on the other half; "
                 "Val B: rules fitted on Val A):", "",
             "| candidate | Val A macro-F1 | Val A minority recall | Val B macro-F1 | Val B minority recall |",
             "|---|---|---|---|---|"]
    for name, c in candidates.items():
        mark = " (in use)" if name == chosen["name"] else ""
        lines.append(f"| {NAMES[name]}{mark} | {_f(c['val_a']['macro_f1'])} | {_f(c['val_a']['minority_recall'])} | "
                     f"{_f(c['val_b']['macro_f1'])} | {_f(c['val_b']['minority_recall'])} |")
    lines += ["", page_line(chosen["why"])]
    if fmt != "classifier" and chosen["name"] != "llm":
        lines += ["", f"This export ({fmt}) is the fine-tuned LLM alone, not {NAMES[chosen['name']]} in use: the "
                      "classifier bundle (`--format classifier`) carries that."]
    return lines


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def run_commands(fmt: str, folder: Path, artifact: str, name: str, card: dict) -> str:
    """The exact commands that run this export (shown in the UI and in the model card)."""
    folder = str(folder)
    if fmt == "classifier":
        return bundle_commands(folder, card)
    score = ('msgs = [{"role": "system", "content": open(f"{path}/rubric.txt").read()},\n'
             '        {"role": "user", "content": "Your text here"}]\n'
             'ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt")\n'
             'out = model.generate(ids, max_new_tokens=8, do_sample=False)\n'
             'code = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()\n'
             'print(json.load(open(f"{path}/labels.json"))["code_to_label"].get(code, "invalid: " + code))')
    if fmt == "adapters":
        return ("```python\nimport json\nfrom peft import AutoPeftModelForCausalLM\nfrom transformers import "
                f"AutoTokenizer\npath = {folder!r}\nmodel = AutoPeftModelForCausalLM.from_pretrained(path)\n"
                f"tok = AutoTokenizer.from_pretrained(path)\n{score}\n```\n"
                f"The base model `{_hub_name(card.get('base_model'))}` must be available (hub id or local folder)"
                + (" (the studio trained on the GGUF of the same model, dequantised; on the hub's bf16 weights the "
                   "answers can differ slightly)." if card.get("base_model") == EMBEDDED_MODEL else "."))
    if fmt in ("merged_16bit", "merged_4bit"):
        return ("```python\nimport json\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
                f"path = {folder!r}\nmodel = AutoModelForCausalLM.from_pretrained(path)\n"
                f"tok = AutoTokenizer.from_pretrained(path)\n{score}\n```")
    model_name = sanitize_name(name).lower()
    return (f"Ollama:\n```bash\ncd {folder}\nollama create {model_name} -f Modelfile\n"
            f"ollama run {model_name} \"Your text here\"\n```\n"
            "llama.cpp (Python):\n```python\nfrom llama_cpp import Llama\n"
            f"llm = Llama(model_path={os.path.join(folder, artifact)!r}, n_ctx=1024, verbose=False)\n"
            f"rubric = open({os.path.join(folder, 'rubric.txt')!r}).read()\n"
            "out = llm.create_chat_completion([{\"role\": \"system\", \"content\": rubric},\n"
            "                                  {\"role\": \"user\", \"content\": \"Your text here\"}],\n"
            "                                 temperature=0, max_tokens=8)\n"
            "print(out[\"choices\"][0][\"message\"][\"content\"])  # a code; labels.json maps it back\n```")


def bundle_commands(folder: str, card: dict) -> str:
    base = _hub_name(card.get("base_model"))
    return (f"Python (with the studio installed: pip install -r requirements.txt):\n```python\nfrom studio import "
            f"Classifier\nclf = Classifier.load({folder!r})\nprint(clf.predict([\"Your text here\"]))  "
            "# [{'label': ..., 'probabilities': {...}}]\nclf.predict_file(\"new.csv\", \"labelled.csv\")  "
            "# any size; a rerun continues\n```\nCommand line:\n```bash\n"
            f"python -m studio predict {folder} new.csv -o labelled.csv\n"
            f"python -m studio serve {folder} --port 8000   # POST /v1/classify {{\"texts\": [...]}}\n```\n"
            + ("It holds the classic model alone: no language model is needed." if card.get("classic_only") else
               f"The base model `{base}` must be available (hub id or local folder; the embedded default is made "
               "on this machine from its PyPI package)."))


def _hub_name(model_name: str | None) -> str | None:
    return HUB_ID if model_name == EMBEDDED_MODEL else model_name


def zip_export(folder: str | Path) -> Path:
    """A zip beside the folder (for the UI's download link), written atomically."""
    folder = Path(folder)
    tmp = shutil.make_archive(str(folder.parent / f".{folder.name}.zip-tmp"), "zip", folder)
    final = folder.parent / f"{folder.name}.zip"
    os.replace(tmp, final)
    return final
