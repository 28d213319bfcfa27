"""The live dashboard: one static page (HTML, JS, CSS) served by the gateway itself.

No CDN, no build step, no external fonts: the three files ship inside the package and are held
in memory. The page carries no data and no secrets; it polls `GET /admin/status` and
`GET /admin/events` with the admin key (from `?key=` or typed in), so protecting those endpoints
protects the dashboard.

`dashboard_app` is a plain ASGI app. Mounted at `/dashboard` it answers `/dashboard` (a redirect
to `/dashboard/`, keeping the query string), `/dashboard/` and `/dashboard/<file>`. It works both
when the mount strips its prefix (`root_path` set, `path` relative) and when it does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["FILES", "StaticFile", "dashboard_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}
# The page talks only to its own origin; `data:` is for the status-coloured favicon.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    # the admin key may sit in the page's URL: never send it to anyone in a Referer
    (b"referrer-policy", b"no-referrer"),
]
_MOUNT = "/dashboard"


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file of the page, ready to send."""

    body: bytes
    content_type: str
    etag: bytes

    @classmethod
    def load(cls, name: str) -> StaticFile:
        body = (resources.files(__name__) / name).read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        return cls(body, _CONTENT_TYPES[name.rsplit(".", 1)[-1]], etag)


FILES: dict[str, StaticFile] = {
    name: StaticFile.load(name) for name in ("index.html", "dashboard.js", "dashboard.css")
}


async def dashboard_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the dashboard's static files (GET and HEAD)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1003})
        return
    name = _file_name(scope)
    if name is None:
        await _plain(send, 404, b"not found")
    elif scope["method"] not in ("GET", "HEAD"):
        await _plain(send, 405, b"method not allowed", [(b"allow", b"GET, HEAD")])
    elif name == "":
        await _redirect_to_slash(scope, send)
    else:
        await _serve(scope, send, FILES[name])


def _file_name(scope: Scope) -> str | None:
    """The file a request asks for; "" for the bare mount (which needs a trailing slash)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "").rstrip("/")
    if root and _under(path, root):
        path = path[len(root) :]  # mounts that keep the full path in `path`
    if _under(path, _MOUNT):
        path = path[len(_MOUNT) :]  # served by prefix, without a mount
    if path == "":
        return ""
    name = path.lstrip("/") or "index.html"
    return name if name in FILES else None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def _serve(scope: Scope, send: Send, file: StaticFile) -> None:
    headers = [
        (b"content-type", file.content_type.encode()),
        (b"etag", file.etag),
        # unversioned file names: let browsers keep a copy but revalidate it every time
        (b"cache-control", b"no-cache"),
        *_SECURITY_HEADERS,
    ]
    if file.content_type.startswith("text/html"):
        headers.append((b"content-security-policy", _CSP.encode()))
    if file.etag in _header(scope, b"if-none-match"):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(file.body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else file.body
    await send({"type": "http.response.body", "body": body})


async def _redirect_to_slash(scope: Scope, send: Send) -> None:
    # A relative Location ("dashboard/?key=...") stays right behind any prefix or proxy.
    path: str = scope["path"]
    root: str = scope.get("root_path", "").rstrip("/")
    full = path if _under(path, root) else root + path
    last = full.rstrip("/").rsplit("/", 1)[-1] or "."
    query: bytes = scope.get("query_string", b"")
    location = last.encode() + b"/" + (b"?" + query if query else b"")
    await _plain(send, 308, b"", [(b"location", location)])


async def _plain(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *_SECURITY_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return b""


async def _lifespan(receive: Receive, send: Send) -> None:
    """Mounted on its own (tests, `uvicorn failover.server.dashboard:dashboard_app`)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
