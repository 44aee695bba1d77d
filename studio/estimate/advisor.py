"""The recipe advisor: from the GPU's memory, the dataset's size and its class ratio, which of the guide's presets
to start from, and why. Several can apply; they are applied in the order given (memory first, then data)."""

from __future__ import annotations

from dataclasses import dataclass

from studio.config import PRESETS, RunConfig, apply_preset
from studio.estimate.vram import BANDS, Estimate, reestimate

SMALL_DATASET_ROWS = 3000  # the guide's "small dataset (~2k rows)" recipe, with some slack
IMBALANCED_SHARE = 0.2  # a smallest class at or under 20% of the rows: the guide's 90/10 recipe
RANK_32_ROWS = 5000  # enough data for the extra capacity of r=32 to pay off


@dataclass
class Advice:
    preset: str
    reason: str


def advise(config: RunConfig, estimate: Estimate | None, *, train_rows: int | None = None,
           class_counts: dict[str, int] | None = None, lengths: list[int] | None = None) -> list[Advice]:
    """The presets that fit this situation, each with the reason in the user's numbers."""
    out: list[Advice] = []
    if estimate is not None and estimate.gpu_total_gb:
        out += _memory_advice(config, estimate, train_rows, lengths)
    if train_rows is not None and train_rows <= SMALL_DATASET_ROWS:
        instruct = "instruct" in config.model.name.lower() or config.model.name.startswith("embedded:")
        out.append(Advice("Small dataset (~2k rows)", f"{train_rows:,} training rows: lora_dropout 0.05 curbs "
                          "overfitting" + ("" if instruct else "; prefer an Instruct model for so little data") +
                          "."))
    if class_counts and len(class_counts) >= 2:
        total = sum(class_counts.values())
        label, smallest = min(class_counts.items(), key=lambda kv: kv[1])
        share = smallest / total if total else 0
        if share <= IMBALANCED_SHARE:
            out.append(Advice("90/10 imbalance", f"'{label}' is {100 * share:.0f}% of the rows: train on 70/30 and "
                              "watch its recall on Val A (natural ratio) and Val B (balanced) while training."))
    return out


def _memory_advice(config, estimate, train_rows, lengths) -> list[Advice]:
    tight = "Memory tight"
    tight_32 = "Memory tight + r=32 (rsLoRA)"
    limit = BANDS[1][0]

    def after(name: str) -> Estimate:
        return reestimate(estimate, apply_preset(config, name), lengths)

    now = f"{100 * estimate.share:.0f}% of {estimate.gpu_total_gb:g} GiB"
    if estimate.share > limit:
        with_32 = after(tight_32)
        if (train_rows or 0) >= RANK_32_ROWS and with_32.share <= limit:
            return [Advice(tight_32, f"These settings need {now}; '{tight_32}' needs "
                           f"{100 * with_32.share:.0f}%, and {train_rows:,} rows can use r=32's capacity.")]
        plain = after(tight)
        fits = "" if plain.share <= limit else " Still too much: also lower max_seq_length, or pick a smaller model."
        return [Advice(tight, f"These settings need {now}; '{tight}' needs {100 * plain.share:.0f}%.{fits}")]
    return []


def apply_advice(config: RunConfig, advice: list[Advice]) -> RunConfig:
    for item in advice:
        if item.preset in PRESETS:
            config = apply_preset(config, item.preset)
    return config
