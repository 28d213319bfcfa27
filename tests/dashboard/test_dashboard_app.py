"""The ASGI app that serves the dashboard's static files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiohttp
import pytest
from dashboard_harness import FakeGateway, LiveServer

from failover.server.dashboard import FILES, dashboard_app

Response = tuple[int, dict[bytes, bytes], bytes]


async def call(
    path: str,
    *,
    method: str = "GET",
    root_path: str = "",
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> Response:
    """Run one request through `dashboard_app` and collect the answer."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "query_string": query,
        "headers": list(headers),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await dashboard_app(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


@pytest.mark.parametrize(
    ("path", "root_path", "name"),
    [
        ("/dashboard/", "", "index.html"),
        ("/dashboard/index.html", "", "index.html"),
        ("/dashboard/dashboard.js", "", "dashboard.js"),
        ("/dashboard/dashboard.css", "", "dashboard.css"),
        ("/dashboard/dashboard.js", "/dashboard", "dashboard.js"),  # mount keeps the full path
        ("/dashboard.js", "/dashboard", "dashboard.js"),  # mount strips its prefix
        ("/", "/dashboard", "index.html"),
        ("/", "", "index.html"),  # served on its own
    ],
)
async def test_serves_each_file_wherever_it_is_mounted(
    path: str, root_path: str, name: str
) -> None:
    """Every file is found with or without a mount that strips its prefix."""
    status, headers, body = await call(path, root_path=root_path)
    assert status == 200
    assert body == FILES[name].body
    assert headers[b"content-type"] == FILES[name].content_type.encode()
    assert headers[b"content-length"] == str(len(body)).encode()


async def test_content_types_are_right() -> None:
    """HTML, JavaScript and CSS go out with their own types, in UTF-8."""
    types = {name: file.content_type for name, file in FILES.items()}
    assert types == {
        "index.html": "text/html; charset=utf-8",
        "dashboard.js": "text/javascript; charset=utf-8",
        "dashboard.css": "text/css; charset=utf-8",
    }


async def test_files_are_revalidated_with_an_etag() -> None:
    """Unversioned names are cached but revalidated: a matching ETag gets 304 and no body."""
    status, headers, _ = await call("/dashboard/dashboard.js")
    assert status == 200
    assert headers[b"cache-control"] == b"no-cache"
    etag = headers[b"etag"]
    status, headers, body = await call(
        "/dashboard/dashboard.js", headers=[(b"if-none-match", etag)]
    )
    assert (status, body) == (304, b"")
    assert headers[b"etag"] == etag


async def test_the_page_is_locked_to_its_own_origin() -> None:
    """The HTML forbids scripts, styles and connections from anywhere but the gateway."""
    _, headers, _body = await call("/dashboard/")
    csp = headers[b"content-security-policy"].decode()
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert headers[b"referrer-policy"] == b"no-referrer"  # the key may be in the URL
    assert headers[b"x-content-type-options"] == b"nosniff"
    for file in FILES.values():  # nothing is fetched from elsewhere: no CDN, no web fonts
        text = file.body.decode()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "@import" not in text and "@font-face" not in text


async def test_bare_mount_redirects_to_the_slash_keeping_the_query() -> None:
    """`/dashboard?key=k` moves to `dashboard/?key=k` so relative asset URLs resolve."""
    status, headers, _body = await call("/dashboard", query=b"key=k&interval=1000")
    assert status == 308
    assert headers[b"location"] == b"dashboard/?key=k&interval=1000"
    status, headers, _ = await call("", root_path="/dashboard")
    assert (status, headers[b"location"]) == (308, b"dashboard/")


async def test_head_answers_headers_only() -> None:
    """HEAD gets the length of the file but no body."""
    status, headers, body = await call("/dashboard/dashboard.css", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers[b"content-length"] == str(len(FILES["dashboard.css"].body)).encode()


async def test_unknown_files_and_methods_are_refused() -> None:
    """Only the three files exist, and only to be read."""
    assert (await call("/dashboard/secrets.txt"))[0] == 404
    assert (await call("/dashboard/../pyproject.toml"))[0] == 404
    status, headers, _ = await call("/dashboard/", method="POST")
    assert status == 405
    assert headers[b"allow"] == b"GET, HEAD"


async def test_lifespan_and_websockets_are_handled() -> None:
    """Run on its own, the app completes the lifespan protocol and turns websockets away."""
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await dashboard_app({"type": "lifespan"}, receive, send)
    await dashboard_app({"type": "websocket", "path": "/dashboard/"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
        "websocket.close",
    ]


async def test_served_over_real_http() -> None:
    """Through a real server, the browser-facing answers are the same."""
    server = await LiveServer(FakeGateway(lambda: {"routes": {}})).start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}/dashboard?key=k", allow_redirects=True) as res,
        ):
            assert res.status == 200
            assert str(res.url).endswith("/dashboard/?key=k")
            assert res.headers["content-type"] == "text/html; charset=utf-8"
            assert '<script src="dashboard.js" defer></script>' in await res.text()
    finally:
        await server.stop()
