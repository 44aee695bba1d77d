"""One tokenization, on the GPU's backend: the embedded model loaded as a run loads it (Unsloth where it is
installed), the trainer built as the worker builds it, and for every training row the ids the trainer will train on
compared with the ids the scorer feeds for the same text (prompt, then the code). Prints one JSON line.

    python3 bench/device/tokenization_check.py --data financial_phrasebank.csv
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--rows", type=int, default=500)
    args = parser.parse_args()
    from studio.config import RunConfig
    from studio.models.loading import choose_backend

    backend = choose_backend("auto")
    if backend.name == "unsloth":
        import unsloth  # noqa: F401 (before transformers, as the worker does)
    from datasets import Dataset
    from trl import SFTConfig

    from studio.data.formatting import answer_ids
    from studio.data.prepare import prepare_data
    from studio.classifier.scoring import LabelScorer
    from studio.models.loading import load_for_training
    from studio.train.sft import Objective, sft_args, sft_trainer_class

    config = RunConfig().replace({"data": {"path": args.data}})
    loaded, optim = load_for_training(config.model, config.lora, config.train, backend, log=lambda m: None)
    tokenizer = loaded.tokenizer
    prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length)
    frame = prepared.train.head(args.rows)
    first = [answer_ids(tokenizer, prepared.rubric, prepared.prompt_format, c)[0] for c in prepared.codes.values()]
    config.train.per_device_train_batch_size = config.train.per_device_train_batch_size or 8
    config.train.learning_rate = 1e-4
    printed = io.StringIO()
    with redirect_stdout(printed):  # what the trainer's preparation prints (Unsloth's notices)
        trainer = sft_trainer_class()(
            model=loaded.model, processing_class=tokenizer,
            args=SFTConfig(**sft_args(config, output_dir=tempfile.mkdtemp(), optim=optim, dtype=loaded.dtype,
                                      device=backend.device, autocast=loaded.autocast)),
            train_dataset=Dataset.from_list(prepared.tokenized(tokenizer, frame)),
            objective=Objective("next_token", first, tokenizer.pad_token_id))
    scorer = LabelScorer(loaded.model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format)
    mismatches, doubled = 0, 0
    bos = tokenizer.bos_token_id
    for i, (text, label) in enumerate(zip(frame["text"], frame["label"])):
        row = trainer.train_dataset[i]
        prompt = scorer.prompt_ids(text)
        code = answer_ids(tokenizer, prepared.rubric, prepared.prompt_format, prepared.codes[label])
        if row["input_ids"][:len(prompt) + len(code)] != prompt + code:
            mismatches += 1
        if bos is not None and row["input_ids"][:2] == [bos, bos]:
            doubled += 1
    print(json.dumps({"backend": backend.name, "rows": len(frame), "mismatches": mismatches, "doubled_bos": doubled,
                      "double_bos_notice": "double BOS" in printed.getvalue(),
                      "first_ids": trainer.train_dataset[0]["input_ids"][:6]}))


if __name__ == "__main__":
    main()
