"""One thread runs the model; requests wait on futures. Texts that arrive while a batch runs are classified together
in the next one (up to ``max_batch`` texts), so many small concurrent requests cost about what one large one does
(docs/benchmarks.md, "Serving")."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable


class Busy(Exception):
    """More texts are waiting than the server accepts: the client should retry a little later."""


class MicroBatcher:
    def __init__(self, predict: Callable[[list[str]], list], max_batch: int = 32, max_wait_s: float = 0.002,
                 max_waiting: int = 4096):
        self.predict, self.max_batch, self.max_wait_s, self.max_waiting = predict, max_batch, max_wait_s, max_waiting
        self._requests: deque[tuple[list[str], Future]] = deque()
        self._waiting = 0  # texts queued, not yet taken into a batch
        self._changed = threading.Condition()
        self._closed = False
        self.batches = 0  # batches run, and texts in them (``/v1/model`` shows the mean batch size)
        self.texts = 0
        self._thread = threading.Thread(target=self._run, name="classifier-batches", daemon=True)
        self._thread.start()

    def submit(self, texts: list[str]) -> Future:
        """A future of one prediction per text, in order."""
        future: Future = Future()
        with self._changed:
            if self._closed:
                raise Busy("the server is stopping")
            if self._waiting and self._waiting + len(texts) > self.max_waiting:
                raise Busy(f"{self._waiting} texts are waiting already")
            self._requests.append((texts, future))
            self._waiting += len(texts)
            self._changed.notify()
        return future

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout=30)

    def _next_batch(self) -> list[tuple[list[str], Future]] | None:
        """Requests worth up to ``max_batch`` texts (a larger request whole), after waiting briefly for company."""
        with self._changed:
            while not self._requests and not self._closed:
                self._changed.wait()
            if not self._requests:
                return None
            deadline = time.monotonic() + self.max_wait_s
            while self._waiting < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            taken, count = [], 0
            while self._requests and (not taken or count + len(self._requests[0][0]) <= self.max_batch):
                texts, future = self._requests.popleft()
                taken.append((texts, future))
                count += len(texts)
            self._waiting -= count
            return taken

    def _run(self) -> None:
        while (taken := self._next_batch()) is not None:
            texts = [t for request, _ in taken for t in request]
            try:
                results = []
                for start in range(0, len(texts), self.max_batch):
                    results += self.predict(texts[start:start + self.max_batch])
            except BaseException as exc:  # the requests of this batch get the error; the server goes on
                for _, future in taken:
                    future.set_exception(exc)
                continue
            self.batches += 1
            self.texts += len(texts)
            start = 0
            for request, future in taken:
                future.set_result(results[start:start + len(request)])
                start += len(request)
