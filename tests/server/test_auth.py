"""Who may call what: client keys for the model APIs, the admin key (or loopback) for /admin,
and the client's credentials never travelling upstream."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from failover.server.auth import AdminGuard, KeyRing, is_loopback

from .harness import ADMIN_KEY, CLIENT_KEY, PROVIDER_KEY, Raw, Stack

HI = [{"role": "user", "content": "hi"}]
KEYED = {"server": {"api_keys": [CLIENT_KEY, "second-key"], "admin_key": ADMIN_KEY}}


@pytest.fixture
def keyed(make_stack: Any) -> Stack:
    stack: Stack = make_stack(KEYED)
    return stack


def test_key_ring_compares_digests() -> None:
    """Only configured keys pass; an empty ring lets everyone in."""
    ring = KeyRing(["a-key", "b-key"])
    assert ring.allows(b"a-key") and ring.allows(b"b-key")
    assert not ring.allows(b"c-key") and not ring.allows(None) and not ring.allows(b"")
    assert "a-key" not in repr(ring)
    assert KeyRing([]).allows(None)


def test_admin_guard() -> None:
    """With a key: the key. Without: loopback clients only."""
    assert AdminGuard("k").check(b"k", "10.0.0.1") == 0
    assert AdminGuard("k").check(b"x", "127.0.0.1") == 401
    assert AdminGuard(None).check(None, "127.0.0.1") == 0
    assert AdminGuard(None).check(None, "::1") == 0
    assert AdminGuard(None).check(None, "10.1.2.3") == 403
    assert AdminGuard(None).check(None, None) == 403


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.168.1.2", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Loopback means 127.0.0.0/8 and ::1, v4-mapped included."""
    assert is_loopback(host) is loopback


def test_missing_or_wrong_key_is_401(keyed: Stack) -> None:
    """No key or a wrong one: 401 in the API's own format; the upstream is never called."""
    with Raw(keyed.port) as http:
        none = http.post("/v1/chat/completions", {"model": "chat", "messages": HI})
        assert none.status == 401
        assert none.json["error"]["code"] == "invalid_api_key"
        wrong = http.post("/v1/messages", {}, {"x-api-key": "nope"})
        assert wrong.status == 401
        assert wrong.json["error"]["type"] == "authentication_error"
        assert http.get("/v1/models", {"authorization": "Basic " + CLIENT_KEY}).status == 401
    assert keyed.primary.requests == []


def test_sdks_authenticate_with_their_usual_headers(keyed: Stack) -> None:
    """The OpenAI SDK (Bearer) and the Anthropic SDK (x-api-key) both get in."""
    with openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="second-key", max_retries=0) as oai:
        assert oai.chat.completions.create(model="chat", messages=HI).choices  # type: ignore[arg-type]
    with anthropic.Anthropic(base_url=keyed.url, api_key=CLIENT_KEY, max_retries=0) as claude:
        assert claude.messages.create(model="chat", max_tokens=5, messages=HI).content  # type: ignore[arg-type]
    with (
        openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="bad", max_retries=0) as oai,
        pytest.raises(openai.AuthenticationError),
    ):
        oai.models.list()


def test_client_credentials_are_not_forwarded(keyed: Stack) -> None:
    """Upstream calls carry the provider's key, never the client's headers."""
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "x-api-key": CLIENT_KEY, "cookie": "c=1"}
    with Raw(keyed.port) as http:
        assert (
            http.post("/v1/chat/completions", {"model": "chat", "messages": HI}, headers).status
            == 200
        )
        assert (
            http.post("/v1/chat/completions", {"model": "claude", "messages": HI}, headers).status
            == 200
        )
    sent = keyed.primary.requests[-1].headers
    assert sent["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "x-api-key" not in sent and "cookie" not in sent
    assert keyed.claude.requests[-1].headers["x-api-key"] == PROVIDER_KEY
    assert CLIENT_KEY not in str(dict(keyed.claude.requests[-1].headers))


def test_admin_needs_the_admin_key(keyed: Stack) -> None:
    """/admin/* wants the admin key; a client key is not enough; health stays open."""
    with Raw(keyed.port) as http:
        assert http.get("/admin/status").status == 401
        assert http.get("/admin/status", {"authorization": f"Bearer {CLIENT_KEY}"}).status == 401
        assert http.get("/admin/status", {"authorization": f"Bearer {ADMIN_KEY}"}).status == 200
        assert http.get("/admin/status", {"x-api-key": ADMIN_KEY}).status == 200
        assert http.get("/health/ready").status == 200


def test_admin_without_a_key_answers_loopback(http: Raw) -> None:
    """With no admin key configured, a loopback client may use /admin."""
    assert http.get("/admin/status").status == 200
