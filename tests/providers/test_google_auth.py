"""Google credentials for Vertex AI: tokens fetched once, refreshed before expiry on the
injected clock, shared between concurrent callers, refused tokens replaced, failures named by
their source and remembered, and no token or key in any error, repr or log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.clock import FakeClock
from failover.errors import AuthFailed
from failover.providers.vertex import GoogleAuth, VertexAnthropicAdapter, VertexGeminiAdapter
from failover.transport import Transport
from fakes import FakeTokenServer, FakeVertex
from fakes.google_token_server import new_private_key, private_key_pem

from .conftest import MakeVertex
from .support import USER_HI, collect

BOUND = 5.0  # seconds; only turns a would-be hang into a failure
GEMINI = "gemini-2.0-flash"


async def test_one_token_serves_many_requests(
    vertex_gemini: VertexGeminiAdapter, vertex_server: FakeVertex, tokens: FakeTokenServer
) -> None:
    """The token is fetched once and reused by later requests, whole and streamed."""
    for _ in range(3):
        await vertex_gemini.complete(USER_HI)
    await collect(vertex_gemini.stream(USER_HI))
    assert len(tokens.requests) == 1
    assert len({vertex_server.bearer(i) for i in range(4)}) == 1


async def test_the_token_is_kept_until_five_minutes_before_expiry(
    vertex_gemini: VertexGeminiAdapter, tokens: FakeTokenServer, clock: FakeClock
) -> None:
    """With more than five minutes of the hour-long token left, no refresh happens."""
    await vertex_gemini.complete(USER_HI)
    clock.advance_sync(3600 - 301)
    await vertex_gemini.complete(USER_HI)
    assert len(tokens.requests) == 1


async def test_the_token_is_refreshed_within_five_minutes_of_expiry(
    vertex_gemini: VertexGeminiAdapter,
    vertex_server: FakeVertex,
    tokens: FakeTokenServer,
    clock: FakeClock,
) -> None:
    """Inside the last five minutes a new token is fetched before the request is sent."""
    await vertex_gemini.complete(USER_HI)
    clock.advance_sync(3600 - 299)
    await vertex_gemini.complete(USER_HI)
    assert len(tokens.requests) == 2
    assert vertex_server.bearer(1) != vertex_server.bearer(0)
    assert tokens.valid(vertex_server.bearer(1))


async def test_concurrent_requests_share_one_refresh(
    vertex_claude: VertexAnthropicAdapter, vertex_server: FakeVertex, tokens: FakeTokenServer
) -> None:
    """Requests arriving while a token is being fetched wait for that one fetch."""
    tokens.gate = asyncio.Event()
    tasks = [asyncio.create_task(vertex_claude.complete(USER_HI)) for _ in range(5)]
    await asyncio.wait_for(tokens.wait_for_requests(1), BOUND)
    assert not any(task.done() for task in tasks)
    tokens.gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
    assert len(tokens.requests) == 1
    assert len({vertex_server.bearer(i) for i in range(5)}) == 1


async def test_an_expired_token_is_auth_failed_and_then_replaced(
    vertex_gemini: VertexGeminiAdapter, vertex_server: FakeVertex, tokens: FakeTokenServer
) -> None:
    """A token Vertex refuses (401) fails the attempt as auth; the next call gets a new one."""
    await vertex_gemini.complete(USER_HI)
    tokens.expire_all()
    with pytest.raises(AuthFailed) as caught:
        await vertex_gemini.complete(USER_HI)
    assert caught.value.status == 401 and "invalid authentication" in caught.value.message
    await vertex_gemini.complete(USER_HI)
    assert len(tokens.requests) == 2 and tokens.valid(vertex_server.bearer(2))


async def test_a_request_without_a_valid_token_gets_googles_401(
    vertex_server: FakeVertex, transport: Transport
) -> None:
    """The fake Vertex refuses a bearer token no token endpoint issued, as Google does."""
    client = transport.client("raw")
    url = f"{vertex_server.base_url}/publishers/google/models/{GEMINI}"
    resp = await client.request("GET", url, headers={"authorization": "Bearer ya29.forged"})
    assert resp.status == 401 and b"UNAUTHENTICATED" in resp.body


async def test_a_wrong_key_is_auth_failed_naming_the_file(
    tmp_path: Path, make_vertex: MakeVertex, vertex_server: FakeVertex, tokens: FakeTokenServer
) -> None:
    """A service account whose signature the token endpoint rejects names the file, not the key."""
    key = new_private_key()
    other = tokens.write_service_account(tmp_path / "stale.json", key=key)
    adapter = make_vertex(GEMINI, credentials_file=str(other))
    with pytest.raises(AuthFailed) as caught:
        await adapter.complete(USER_HI)
    assert str(other) in caught.value.message and "Invalid JWT Signature" in caught.value.message
    assert private_key_pem(key).splitlines()[1] not in repr(caught.value)
    assert caught.value.deployment == adapter.name
    assert vertex_server.requests == []


async def test_no_secret_in_errors_reprs_or_logs(
    vertex_gemini: VertexGeminiAdapter,
    vertex_server: FakeVertex,
    tokens: FakeTokenServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the access token nor the private key shows in errors, reprs or debug logs."""
    caplog.set_level(logging.DEBUG)
    await vertex_gemini.complete(USER_HI)
    tokens.expire_all()
    with pytest.raises(AuthFailed) as caught:
        await vertex_gemini.complete(USER_HI)
    token = vertex_server.bearer(0)
    key_line = private_key_pem(tokens.key).splitlines()[1]
    logged = " ".join(str(vars(record)) for record in caplog.records)
    seen = [
        logged,
        caplog.text,
        repr(vertex_gemini),
        repr(vertex_gemini.auth),
        str(caught.value),
        repr(caught.value),
    ]
    seen.append(json.dumps(caught.value.body))
    assert not [text for text in seen if token in text or key_line in text]


# -- GoogleAuth on its own -------------------------------------------------------------------


@pytest.fixture
def auth(service_account: Path, clock: FakeClock) -> Iterator[GoogleAuth]:
    """Tokens from the fake endpoint through the service-account file."""
    made = GoogleAuth(credentials_file=str(service_account), clock=clock)
    yield made
    made.close()


async def test_headers_carry_a_bearer_token(auth: GoogleAuth, tokens: FakeTokenServer) -> None:
    """The headers hold `Bearer <token>` with a token the endpoint issued."""
    headers = await auth.headers()
    assert tokens.valid(headers["authorization"].removeprefix("Bearer "))


async def test_the_event_loop_keeps_running_during_a_fetch(
    auth: GoogleAuth, tokens: FakeTokenServer
) -> None:
    """The blocking token call runs in a worker thread: the loop serves the fake meanwhile."""
    tokens.gate = asyncio.Event()
    fetch = asyncio.create_task(auth.headers())
    await asyncio.wait_for(tokens.wait_for_requests(1), BOUND)
    assert not fetch.done()
    tokens.gate.set()
    assert "authorization" in await asyncio.wait_for(fetch, BOUND)


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
    auth: GoogleAuth, tokens: FakeTokenServer
) -> None:
    """When one waiting caller gives up, the others still get the token from the same fetch."""
    tokens.gate = asyncio.Event()
    quitter = asyncio.create_task(auth.headers())
    stayer = asyncio.create_task(auth.headers())
    await asyncio.wait_for(tokens.wait_for_requests(1), BOUND)
    quitter.cancel()
    tokens.gate.set()
    assert "authorization" in await asyncio.wait_for(stayer, BOUND)
    assert quitter.cancelled() and len(tokens.requests) == 1


async def test_a_short_lived_token_is_refreshed_half_way(
    auth: GoogleAuth, tokens: FakeTokenServer, clock: FakeClock
) -> None:
    """A token shorter than twice the margin is refreshed at half its life, not on every call."""
    tokens.expires_in = 120
    await auth.headers()
    clock.advance_sync(59)
    await auth.headers()
    assert len(tokens.requests) == 1
    clock.advance_sync(2)
    await auth.headers()
    assert len(tokens.requests) == 2


async def test_a_failed_fetch_is_remembered_for_thirty_seconds(
    auth: GoogleAuth, tokens: FakeTokenServer, clock: FakeClock
) -> None:
    """After a refused grant, calls fail at once for 30s without asking again, then retry."""
    tokens.push(FakeTokenServer.error("invalid_grant", "Invalid JWT Signature."))
    for _ in range(2):
        with pytest.raises(AuthFailed, match="Invalid JWT Signature"):
            await auth.headers(deployment="vertex/gemini")
    assert len(tokens.requests) == 1
    clock.advance_sync(30)
    assert "authorization" in await auth.headers()
    assert len(tokens.requests) == 2


async def test_a_missing_credentials_file_is_named(tmp_path: Path, clock: FakeClock) -> None:
    """A credentials_file that does not exist fails as auth, naming the path."""
    missing = tmp_path / "nowhere.json"
    auth = GoogleAuth(credentials_file=str(missing), clock=clock)
    with pytest.raises(AuthFailed, match=f"credentials file {missing}"):
        await auth.headers()
    auth.close()


async def test_application_default_credentials_follow_the_environment(
    service_account: Path, tokens: FakeTokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without credentials_file, GOOGLE_APPLICATION_CREDENTIALS names the key to use."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account))
    auth = GoogleAuth()
    headers = await auth.headers()
    auth.close()
    assert tokens.valid(headers["authorization"].removeprefix("Bearer "))
    assert (
        auth.source
        == f"application default credentials (GOOGLE_APPLICATION_CREDENTIALS={service_account})"
    )


async def test_repr_names_the_source_and_the_state_only(
    auth: GoogleAuth, service_account: Path
) -> None:
    """The repr says where credentials come from and how fresh the token is, never the token."""
    assert repr(auth) == f"<GoogleAuth credentials file {service_account}: no token yet>"
    token = (await auth.headers())["authorization"].removeprefix("Bearer ")
    assert repr(auth).endswith(": token fresh for 3300s>") and token not in repr(auth)
