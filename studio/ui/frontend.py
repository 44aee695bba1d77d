"""One repair to Gradio's front end, served in place of the file it is in: a page that nobody touches draws no frames.

Gradio's status tracker (6.31) times a pending event with a loop that asks the browser for a frame at every frame,
until the event is no longer pending. The tracker the page shows while it loads is removed while still pending, so
its loop never ends: the page is redrawn 60 times a second for as long as it is open. In Debian's chromium that cost
an idle page about 5-6 CPU-s a minute, and on the 2-core CPU it took that from the training a page was watching
(docs/benchmarks.md, "The browser and the CLI"). The repair: the loop also ends once its tracker's element has left
the page. It is made by pattern on the minified file; where the pattern is not found (another Gradio), the file is
served as it is.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

TRACKER_FILE = re.compile(r"/assets/(statustracker-[\w-]+\.js)$")
# function ze(){me(()=>{F(Pe,(performance.now()-w(de))/1e3),W&&ze()})}: the loop, and the flag that keeps it going
LOOP = re.compile(r"function ([\w$]+)\(\)\{([\w$]+)\(\(\)=>\{([^{}]*performance\.now\(\)[^{}]*),([\w$]+)&&\1\(\)\}\)\}")


def gradio_assets() -> Path:
    import gradio  # (the app has it loaded already)

    return Path(gradio.__file__).parent / "templates" / "frontend" / "assets"


def repaired(source: str) -> str | None:
    """The status tracker's source with its timing loop ending with its element; None where the patterns are not
    found exactly once (the file is then served unchanged)."""
    loops = list(LOOP.finditer(source))
    if len(loops) != 1:
        return None
    loop = loops[0]
    name, schedule, body, flag = loop.groups()
    # The tracker's element: bound by bind:this (`ne($,e=>U=e,()=>U)`) to the variable declared just before the flag
    # (`let …,U,W=!1,…`); Svelte sets it to null when the tracker is removed.
    declared = re.findall(r"[,\s]([\w$]+)," + re.escape(flag) + r"=!1,", source)
    if len(declared) != 1:
        return None
    element = declared[0]
    if len(re.findall(r"[\w$]+\([\w$]+,([\w$]+)=>" + re.escape(element) + r"=\1,\(\)=>" + re.escape(element) + r"\)",
                      source)) != 1:
        return None
    alive = f"({element}===void 0||{element}?.isConnected)"  # not bound yet: as before; gone: the loop ends
    return source.replace(loop.group(0),
                          f"function {name}(){{{schedule}(()=>{{{body},{flag}&&{alive}&&{name}()}})}}", 1)


@functools.lru_cache(maxsize=4)
def repaired_file(name: str) -> bytes | None:
    path = gradio_assets() / name
    try:
        source = path.read_text(encoding="utf-8")
    except OSError:
        return None
    fixed = repaired(source)
    if fixed is None:
        log.info("Gradio's %s does not have the loop this app repairs; served unchanged.", name)
        return None
    return fixed.encode("utf-8")


class RepairedAssets:
    """ASGI middleware: the status tracker's file, repaired (``repaired``); every other request as Gradio serves it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        match = TRACKER_FILE.search(scope.get("path", "")) if scope["type"] == "http" else None
        body = repaired_file(match.group(1)) if match and scope.get("method") in ("GET", "HEAD") else None
        if body is None:
            return await self.app(scope, receive, send)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = [(b"content-type", b"text/javascript; charset=utf-8"), (b"etag", etag.encode()),
                   (b"cache-control", b"no-cache")]
        if dict(scope.get("headers") or []).get(b"if-none-match") == etag.encode():
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            return await send({"type": "http.response.body", "body": b""})
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
