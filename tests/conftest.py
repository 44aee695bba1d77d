"""Shared fixtures: a tiny byte-level BPE tokenizer with a ChatML template and a tiny random Qwen2 model,
built once per test session (no hub is reachable here or in CI)."""

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "assets" / "sample_forum_posts.csv"


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from studio.models.tiny import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    from studio.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), tokenizer=tiny_tokenizer)


@pytest.fixture
def write(tmp_path):
    """write("name.csv", text_or_bytes, encoding="utf-8") → path of a file in a fresh temp folder."""

    def _write(name, content, encoding="utf-8"):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode(encoding))
        return path

    return _write


TOY_WORDS = ["lathe", "glue", "garden", "solder", "bread", "printer", "drill", "paint"]


def toy_rows(n: int, minority_every: int, seed: int, words_per_row: int = 5) -> list[tuple[str, str]]:
    """A learnable toy task for the tiny model: the first word gives the label away ('rules' → Rules Question)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        minority = i % minority_every == 0
        words = " ".join(rng.choice(TOY_WORDS) for _ in range(words_per_row))
        rows.append((f"{'rules' if minority else 'project'} {words} {i}", "Rules Question" if minority else "Other"))
    return rows
