"""Shared fixtures: a tiny byte-level BPE tokenizer with a ChatML template and a tiny random Qwen2 model,
built once per test session (no hub is reachable here or in CI)."""

import os
import random
from contextlib import contextmanager
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "assets" / "sample_forum_posts.csv"
CHROMIUM = "/usr/bin/chromium"  # Debian's: never a browser of playwright's own


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


DOUBTFUL_TOPICS = {"glue": ["glue", "epoxy", "resin"], "paint": ["paint", "brush", "primer"],
                   "lathe": ["lathe", "chuck", "spindle"], "garden": ["garden", "seeds", "compost"]}
DOUBTFUL_FILLER = ["my", "the", "new", "old", "shed", "today", "again", "please", "help", "with"]


def doubtful_rows(per_class: int, seed: int) -> list[tuple[str, str]]:
    """Four topics told by their words; a third of the rows name two topics and carry either label: the texts a
    classifier should be unsure of."""
    rng = np.random.default_rng(seed)
    names, rows = list(DOUBTFUL_TOPICS), []
    for k, topic in enumerate(names):
        for i in range(per_class):
            words = [rng.choice(DOUBTFUL_TOPICS[topic])] + list(rng.choice(DOUBTFUL_FILLER, 4))
            label = topic
            if i % 3 == 0:
                other = names[(k + 1 + i) % len(names)]
                words.append(rng.choice(DOUBTFUL_TOPICS[other]))
                label = rng.choice([topic, other])
            rng.shuffle(words)
            rows.append((" ".join(words) + f" {i}", label))
    return rows


@pytest.fixture(scope="session")
def toy_csv(tmp_path_factory):
    """A learnable task for the tiny model: the label is given away by the first word."""
    rows = [f"{text},{label}" for text, label in toy_rows(120, minority_every=3, seed=0, words_per_row=6)]
    path = tmp_path_factory.mktemp("toy") / "toy.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def toy_config(model_dir, data, **train):
    """A run config that trains the tiny model on ``data`` in a couple of seconds; ``train`` overrides the trainer."""
    from studio.config import RunConfig

    return RunConfig().replace({
        "model": {"name": str(model_dir), "max_seq_length": 256},
        "data": {"path": str(data), "rubric": "Answer RQ or O."},
        "lora": {"use_gradient_checkpointing": "false", "r": 8, "lora_alpha": 16},
        "train": {"max_steps": 40, "learning_rate": 5e-3, "warmup_steps": 2, "per_device_train_batch_size": 8,
                  "gradient_accumulation_steps": 1, "logging_steps": 1, "eval_steps": 0, "time_budget_minutes": 0,
                  **train},
    })


# Two processes through Accelerate on the CPU (gloo): the code path of a 2-GPU run.
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def wait_for(predicate, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def raise_at(step: int, exc: BaseException):
    """A trainer callback that raises ``exc`` after ``step`` and keeps a weak reference to the model it trained."""
    import weakref

    from transformers import TrainerCallback

    class RaiseAt(TrainerCallback):
        model_ref = None

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.model_ref = weakref.ref(model)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise exc

    return RaiseAt()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(demo) -> str:
    """Queue and launch a built app on a free local port, without blocking; returns its URL."""
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/"


def start_web_app(runs: Path, port: int, config: Path | None = None):
    """``python launch.py`` as a person starts it (its own process), once it answers on ``port``."""
    import subprocess

    app = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), "--runs-dir", str(runs),
                            *(["--config", str(config)] if config else [])], cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})

    def up():
        import httpx

        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
        except httpx.TransportError:
            return app.poll() is not None

    assert wait_for(up, timeout=120) and app.poll() is None, app.stderr.read()[-2000:] if app.poll() else ""
    return app


def evaluate_in_page(page, timeout: int = 120000) -> None:
    """The Evaluate tab, its Evaluate button, and the wait until the summary and Val A's matrix are drawn."""
    page.get_by_role("tab", name="5 · Evaluate").click()
    page.wait_for_timeout(1000)
    page.click("#evaluate")
    page.locator("#eval-summary").get_by_text("minority class").wait_for(timeout=timeout)
    page.locator("#cm-val-a .heatmaplayer").wait_for(timeout=30000)


@contextmanager
def trained_run_in_browser(config, runs: Path):
    """Train ``config`` into ``runs``, serve the web app on it and open it in a browser page (yielded)."""
    from playwright.sync_api import sync_playwright

    from studio.train.worker import start_training
    from studio.ui.app import build_app

    job = start_training(config, runs)
    assert job.wait(300) and job.state == "finished", job.error
    demo = build_app(str(runs), 50, config)
    url = serve(demo)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            yield page
            browser.close()
    finally:
        demo.close()


def launch_chromium(playwright):
    """Debian's chromium, headless, as every browser test launches it."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
