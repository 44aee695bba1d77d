"""One gate in front of every route when the app has a password, logins that hold against guessing, and sessions
that end.

Gradio checks the login on its data routes, but a few of its routes (``/gradio_api/reset`` and ``/gradio_api/cancel``,
which act on other people's queued events) answer without it, and its login page embeds the API description with
every input's current default (run names, the rubric). This middleware refuses every request without a valid login
cookie, except the login page and static files, and blanks that description out of the login page, so nothing the
studio holds (runs, data, models) and nothing it does (training, export, deletion) is reachable without the password.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from urllib.parse import parse_qs

from studio.door.passwords import check_password, hash_password

PUBLIC_PATHS = {"/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/robots.txt", "/manifest.json",
                "/gradio_api/theme.css", "/gradio_api/startup-events", "/gradio_api/app_id", "/gradio_api/app_id/",
                "/gradio_api/user", "/gradio_api/user/", "/gradio_api/token", "/gradio_api/token/",
                "/gradio_api/login_check", "/gradio_api/login_check/"}
PUBLIC_PREFIXES = ("/static/", "/assets/", "/svelte/", "/pwa_icon")


class LoginRequired:
    """ASGI middleware: 401 for any non-public request without a live login cookie the Gradio app issued; logins
    rate-limited per client address and user name (``LoginGuard``), sessions ended when idle (``Sessions``), one
    audit line per login attempt (never the password)."""

    def __init__(self, app, guard: "LoginGuard | None" = None, sessions: "Sessions | None" = None):
        self.app = app
        self.guard = guard or LoginGuard()
        self.sessions = sessions

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in ("/login", "/login/")
                and getattr(scope.get("app"), "auth", None) is not None):
            return await self._login(scope, receive, send)
        if scope["type"] not in ("http", "websocket") or self._allowed(scope):
            if scope["type"] == "http" and scope.get("path") == "/" and self._logged_out(scope):
                return await self.app(scope, receive, _without_api_info(send))
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 4401})
        await _respond(send, 401, {"detail": {"error": "Not authenticated", "auth_message": None}})

    def _allowed(self, scope) -> bool:
        path = scope.get("path", "")
        return not self._logged_out(scope) or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def _logged_out(self, scope) -> bool:
        app = scope.get("app")
        if app is None or getattr(app, "auth", None) is None:
            return False  # no password configured: nothing to enforce
        token = _token(scope, getattr(app, "cookie_id", ""))
        if token is None or token not in getattr(app, "tokens", {}):
            return True
        return self.sessions is not None and not self.sessions.alive(app, token)

    async def _login(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        user = (parse_qs(body.decode("utf-8", errors="replace")).get("username") or [""])[0].strip()
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.guard.retry_after(client, user)
        if wait > 0:
            audit.warning("login locked client=%s user=%r retry_after=%.0fs", client, user, wait)
            return await _respond(send, 429, {"detail": f"Too many failed logins: try again in {wait:.0f} seconds."},
                                  [(b"retry-after", str(int(wait) + 1).encode())])
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, replay, watch)
        if status.get("code") == 200:
            self.guard.succeeded(client, user)
            audit.info("login ok client=%s user=%r", client, user)
        else:
            self.guard.failed(client, user)
            audit.warning("login failed client=%s user=%r", client, user)


def _token(scope, cookie_id: str) -> str | None:
    cookies = {}
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                cookies[key] = val
    return cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")


async def _respond(send, status: int, content: dict, headers: list | None = None) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


API_INFO = "window.gradio_api_info = "


def _without_api_info(send):
    """Buffer the login page and replace the embedded API description (with its defaults) by an empty one."""
    start, chunks = {}, []

    async def wrapped(message):
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        text = body.decode("utf-8", errors="surrogateescape")
        at = text.find(API_INFO)
        if at >= 0:
            try:
                _, end = json.JSONDecoder().raw_decode(text, at + len(API_INFO))
                text = text[:at + len(API_INFO)] + "{}" + text[end:]
                body = text.encode("utf-8", errors="surrogateescape")
            except ValueError:
                pass
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


# ---- logins that hold against guessing, sessions that end ------------------------------------------------------
audit = logging.getLogger("studio.auth")
audit.setLevel(logging.INFO)  # successes and expiries are INFO, failures and locks WARNING: every attempt is logged
FREE_FAILURES = 5  # failed logins allowed in a window before a lock
WINDOW_S = 15 * 60  # failures older than this are forgotten
LOCK_BASE_S = 30.0  # the first lock; each further failure doubles it
LOCK_MAX_S = 15 * 60.0
MAX_TRACKED = 10_000  # clients and user names remembered at most (the oldest are forgotten first)


def checker(users: dict[str, str]):
    """Gradio's auth callable: constant-time for every user name (an unknown name costs the same as a known one)."""
    dummy = hash_password(secrets.token_hex(8)) if any(s.startswith("scrypt$") for s in users.values()) else ""

    def check(username: str, password: str) -> bool:
        stored = users.get(username)
        ok = check_password(password, stored if stored is not None else dummy)
        return ok and stored is not None

    return check


class LoginGuard:
    """Failed logins per client address and per user name: after FREE_FAILURES in a window, every attempt (the right
    password too) waits LOCK_BASE_S, doubling with each further failure up to LOCK_MAX_S; a success resets the client
    and the user. In memory only, and bounded."""

    def __init__(self):
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # key → (count, time of the last failure)

    def retry_after(self, client: str, user: str) -> float:
        """Seconds until ``client`` may try ``user`` again (0: now)."""
        now = time.time()
        with self._lock:
            waits = [self._wait(key, now) for key in (f"client:{client}", f"user:{user}")]
        return max(waits)

    def _wait(self, key: str, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if now - last > WINDOW_S and now - last > LOCK_MAX_S:
            self._failures.pop(key, None)
            return 0.0
        if count < FREE_FAILURES:
            return 0.0
        lock = min(LOCK_MAX_S, LOCK_BASE_S * 2 ** (count - FREE_FAILURES))
        return max(0.0, last + lock - now)

    def failed(self, client: str, user: str) -> None:
        now = time.time()
        with self._lock:
            for key in (f"client:{client}", f"user:{user}"):
                count, last = self._failures.get(key, (0, 0.0))
                self._failures[key] = (1 if now - last > WINDOW_S else count + 1, now)
            if len(self._failures) > MAX_TRACKED:
                for key, _ in sorted(self._failures.items(), key=lambda kv: kv[1][1])[:len(self._failures) // 10]:
                    del self._failures[key]

    def succeeded(self, client: str, user: str) -> None:
        with self._lock:
            self._failures.pop(f"client:{client}", None)
            self._failures.pop(f"user:{user}", None)


class Sessions:
    """Login tokens that end after ``idle_s`` without a request (Gradio's own tokens never end before a restart)."""

    def __init__(self, idle_s: float):
        self.idle_s = idle_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def alive(self, app, token: str) -> bool:
        now = time.time()
        with self._lock:
            last = self._seen.get(token)
            if last is not None and now - last > self.idle_s:
                self._seen.pop(token, None)
                user = getattr(app, "tokens", {}).pop(token, None)
                audit.info("session expired user=%r after %.0f idle minutes", user, (now - last) / 60)
                return False
            self._seen[token] = now
            if len(self._seen) > MAX_TRACKED:  # tokens of sessions that never came back
                for old in sorted(self._seen, key=self._seen.get)[:len(self._seen) // 10]:
                    del self._seen[old]
            return True

