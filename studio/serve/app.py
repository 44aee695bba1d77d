"""The REST server's routes, limits and errors. Every error is JSON ``{"error": "what went wrong and what to do"}``
with the fitting status: 400 (not JSON), 401 (token), 413 (body too large), 422 (not a list of texts, too many, too
long), 503 (too busy: retry), 500 (the model failed)."""

from __future__ import annotations

import asyncio
import hmac
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr
from starlette.exceptions import HTTPException

from studio.serve.batcher import Busy, MicroBatcher

EXAMPLE = {"texts": ["Can I post a link to my shop?", "Look at the table I built"]}


@dataclass
class Limits:
    max_texts: int = 256  # texts in one request
    max_chars: int = 20_000  # characters in one text (the model reads its first max_seq_length tokens)
    max_body_mb: float = 8.0
    max_batch: int = 32  # texts the model scores at once
    max_waiting: int = 4096  # texts queued before the server answers 503


class ClassifyRequest(BaseModel):
    texts: list[StrictStr] = Field(description="the texts to classify, in order (an empty text gets no label)",
                                   examples=[EXAMPLE["texts"]])


class Prediction(BaseModel):
    label: str | None = Field(description="the predicted label (null for an empty text)")
    probabilities: dict[str, float] | None = Field(description="each label's probability (calibrated)")
    note: str | None = Field(None, description="why a text got no label (null when it got one)")


class ClassifyResponse(BaseModel):
    model: str = Field(description="the run the classifier was trained in")
    classifier: str = Field(description="the candidate in use: llm, classic or blend")
    labels: list[str] = Field(description="every label, in the order of the probabilities")
    results: list[Prediction] = Field(description="one per text, in input order")


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def build_app(classifier, limits: Limits | None = None, token: str | None = None) -> FastAPI:
    """The app for one loaded classifier (``studio.door.classifier.Classifier``); ``token``: required as
    ``Authorization: Bearer TOKEN`` on /v1 routes."""
    limits = limits or Limits()
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = MicroBatcher(classifier.predict, limits.max_batch, max_waiting=limits.max_waiting)
        yield
        state["batcher"].close()

    app = FastAPI(title=f"Studio classifier: {classifier.info.get('name')}", lifespan=lifespan,
                  description="Classify texts with a classifier trained in Studio. Labels: "
                              + ", ".join(classifier.labels) + ".")
    app.add_middleware(BodyLimit, max_mb=limits.max_body_mb)
    add_error_handlers(app)
    authorized = bearer(token)

    @app.get("/healthz", summary="Is the server up and its model loaded")
    async def healthz():
        return {"status": "ok"}

    @app.get("/v1/model", dependencies=[Depends(authorized)], summary="The classifier: labels, candidate, figures")
    async def model():
        batcher = state["batcher"]
        return {**classifier.info, "limits": asdict(limits),
                "served": {"texts": batcher.texts, "batches": batcher.batches}}

    @app.post("/v1/classify", dependencies=[Depends(authorized)], response_model=ClassifyResponse,
              summary="Classify texts")
    async def classify(body: ClassifyRequest):
        check_limits(body.texts, limits)
        try:
            future = state["batcher"].submit(body.texts)
        except Busy as busy:
            raise Refused(503, f"The server is busy ({busy}); retry in a moment.", {"Retry-After": "1"}) from None
        predictions = await asyncio.wrap_future(future)
        return {"model": classifier.info.get("name"), "classifier": classifier.info.get("classifier"),
                "labels": classifier.labels, "results": predictions}

    return app


def check_limits(texts: list[str], limits: Limits) -> None:
    if not texts:
        raise Refused(422, 'texts is empty: send at least one text, e.g. {"texts": ["my text"]}.')
    if len(texts) > limits.max_texts:
        raise Refused(422, f"{len(texts)} texts in one request; the most is {limits.max_texts}: split them into "
                           "several requests (or start the server with a larger --max-texts).")
    long = next((i for i, t in enumerate(texts) if len(t) > limits.max_chars), None)
    if long is not None:
        raise Refused(422, f"texts[{long}] has {len(texts[long]):,} characters; the most is {limits.max_chars:,} "
                           "(the model reads only the start of a text anyway): shorten it.")


def bearer(token: str | None):
    expected = (token or "").encode()

    async def authorized(request: Request) -> None:
        if not token:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected):
            raise Refused(401, "Missing or wrong token: send the header 'Authorization: Bearer TOKEN' with the "
                               "token the server was started with.", {"WWW-Authenticate": "Bearer"})

    return authorized


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request, exc: Refused):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "The body is not valid JSON: send {\"texts\": [\"first text\", ...]} with "
                                          "Content-Type: application/json."}, status_code=400)
        where = "; ".join(f"{_place(e.get('loc', ()))}: {e.get('msg')}" for e in errors[:5])
        return JSONResponse({"error": f"{where}. Send JSON like {{\"texts\": [\"first text\", \"second text\"]}}: "
                                      "texts is a list of strings."}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def failed(request, exc: Exception):
        return JSONResponse({"error": f"The classifier failed on this request ({type(exc).__name__}: {exc}). The "
                                      "server goes on; the server's log has the details."}, status_code=500)


def _place(loc) -> str:
    """('body', 'texts', 3) → texts[3]"""
    parts = [p for p in loc if p != "body"]
    if not parts:
        return "the body"
    return str(parts[0]) + "".join(f"[{p}]" for p in parts[1:])


class BodyLimit:
    """Refuses a body over ``max_bytes`` (413) before it is read whole, whether or not it says its length."""

    def __init__(self, app, max_mb: float):
        self.app, self.max_mb, self.max_bytes = app, max_mb, int(max_mb * 1024 * 1024)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._too_large(send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # (an HTTPException: FastAPI passes it through while it reads the body)
                raise HTTPException(413, self._words())
            return message

        return await self.app(scope, counted, send)

    def _words(self) -> str:
        return (f"The request body is over {self.max_mb:g} MiB: send fewer or shorter texts per "
                "request (or start the server with a larger --max-body-mb).")

    async def _too_large(self, send):
        response = JSONResponse({"error": self._words()}, status_code=413)
        await response({"type": "http"}, None, send)
