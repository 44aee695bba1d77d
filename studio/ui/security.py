"""One gate in front of every route when the app has a password.

Gradio checks the login on its data routes, but a few of its routes (``/gradio_api/reset`` and ``/gradio_api/cancel``,
which act on other people's queued events) answer without it, and its login page embeds the API description with
every input's current default (run names, the rubric). This middleware refuses every request without a valid login
cookie, except the login page and static files, and blanks that description out of the login page, so nothing the
studio holds (runs, data, models) and nothing it does (training, export, deletion) is reachable without the password.
"""

from __future__ import annotations

import json

PUBLIC_PATHS = {"/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/robots.txt", "/manifest.json",
                "/gradio_api/theme.css", "/gradio_api/startup-events", "/gradio_api/app_id", "/gradio_api/app_id/",
                "/gradio_api/user", "/gradio_api/user/", "/gradio_api/token", "/gradio_api/token/",
                "/gradio_api/login_check", "/gradio_api/login_check/"}
PUBLIC_PREFIXES = ("/static/", "/assets/", "/svelte/", "/pwa_icon")


class LoginRequired:
    """ASGI middleware: 401 for any non-public request without a login cookie the Gradio app issued."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self._allowed(scope):
            if scope["type"] == "http" and scope.get("path") == "/" and self._logged_out(scope):
                return await self.app(scope, receive, _without_api_info(send))
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 4401})
        body = json.dumps({"detail": {"error": "Not authenticated", "auth_message": None}}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @classmethod
    def _allowed(cls, scope) -> bool:
        path = scope.get("path", "")
        return not cls._logged_out(scope) or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    @staticmethod
    def _logged_out(scope) -> bool:
        app = scope.get("app")
        if app is None or getattr(app, "auth", None) is None:
            return False  # no password configured: nothing to enforce
        cookies = {}
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    key, _, val = part.strip().partition("=")
                    cookies[key] = val
        cookie_id = getattr(app, "cookie_id", "")
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return token is None or token not in getattr(app, "tokens", {})


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
