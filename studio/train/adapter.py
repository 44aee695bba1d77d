"""A run's adapter as the studio keeps it: the LoRA weights, their config and the tokenizer, with the adapter card
(codes, rubric, prompt format, base model, class priors: what turns the weights into a classifier), written to a
temporary folder and renamed into place, so a kill never leaves half an adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from studio.classifier.calibration import class_priors
from studio.config import EMBEDDED_MODEL, RunConfig
from studio.data.prepare import PreparedData
from studio.files import write_json_atomic
from studio.models.embedded import HUB_ID
from studio.runs.folder import RunDir, write_adapter_card


def save_adapter(run: RunDir, model, tokenizer, prepared: PreparedData, config: RunConfig,
                 base_source: str | None) -> None:
    """Adapter weights + config + tokenizer + adapter card into ``run.adapter``."""
    tmp = run.path / "adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    _name_the_hub_base(tmp, config.model.name)
    write_adapter_card(tmp, {
        "label_codes": prepared.codes, "rubric": prepared.rubric, "prompt_format": prepared.prompt_format,
        "base_model": config.model.name, "base_source": base_source, "max_seq_length": config.model.max_seq_length,
        "class_prior": class_priors(prepared.counts(), prepared.labels), "temperature": 1.0,
    })
    if run.adapter.exists():
        shutil.rmtree(run.adapter)
    tmp.rename(run.adapter)


def _name_the_hub_base(adapter: Path, model_name: str) -> None:
    """An adapter of the embedded model names its hub id as the base (not this machine's cache folder), so the
    export's "how to run it" works on another machine (the studio itself reloads from the card's base_source)."""
    path = adapter / "adapter_config.json"
    if model_name == EMBEDDED_MODEL and path.exists():
        config = json.loads(path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = HUB_ID
        write_json_atomic(path, config)
