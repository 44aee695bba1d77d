"""Start the REST server: load the classifier (a run or a bundle), classify one text so the first request does not
wait for the model, then serve with uvicorn until stopped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from studio.door.classifier import Classifier
from studio.errors import StudioError
from studio.serve.app import Limits, build_app

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_ENV = "STUDIO_SERVE_TOKEN"


def refuse_open_door(host: str, token: str | None, allow_anyone: bool) -> None:
    """A server others can reach answers only with a token, unless its owner says otherwise."""
    if host not in LOOPBACK and not token and not allow_anyone:
        raise StudioError(f"--host {host} lets other machines use this classifier, and no token is set: start it with "
                          f"--token TOKEN (or set {TOKEN_ENV}), or pass --allow-anyone if that is what you want.")


def load_classifier(run: str | Path, runs_dir: str | Path = "runs", use: str | None = None, log=print) -> Classifier:
    started = time.perf_counter()
    classifier = Classifier.load(run, runs_dir, use=use, log=log)
    classifier.predict(["warm-up"])  # loads the LLM now (when the classifier in use needs it), not at a request
    log(f"Loaded {classifier.info.get('name')} ({classifier.info.get('classifier')} in use; labels "
        f"{', '.join(classifier.labels)}) in {time.perf_counter() - started:.1f} s")
    return classifier


def serve(run: str | Path, runs_dir: str | Path = "runs", *, host: str = "127.0.0.1", port: int = 8000,
          token: str | None = None, use: str | None = None, limits: Limits | None = None, allow_anyone: bool = False,
          log=print) -> None:
    import uvicorn  # (the web server: only when serving)

    token = token or os.environ.get(TOKEN_ENV) or None
    refuse_open_door(host, token, allow_anyone)
    classifier = load_classifier(run, runs_dir, use, log)
    app = build_app(classifier, limits, token)
    shown = f"[{host}]" if ":" in host else host
    log(f"Serving on http://{shown}:{port}: POST /v1/classify {{\"texts\": [...]}}; documentation at /docs"
        + ("; token required" if token else ""))
    uvicorn.run(app, host=host, port=port, log_level="info")
