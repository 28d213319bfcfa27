"""SyncRouter: the router for code that is not async."""

from __future__ import annotations

from failover import Deployment, Route, Router, SyncRouter
from failover.testing import ScriptedDeployment, fail, ok

HI = {"messages": [{"role": "user", "content": "hi"}]}


def make() -> SyncRouter:
    primary = ScriptedDeployment("primary", fail(500))
    backup = ScriptedDeployment("backup", ok("from backup", chunks=("from ", "backup")))
    return SyncRouter(Router({"chat": Route([primary, backup])}))


def test_complete_blocks_and_fails_over() -> None:
    """`complete` returns the backup's reply after the primary failed."""
    with make() as sync:
        reply = sync.complete("chat", HI)
    assert (reply.deployment, reply.text) == ("backup", "from backup")


def test_stream_is_a_plain_iterator() -> None:
    """`stream` yields the chunks as a blocking iterator, ending with the finish reason."""
    with make() as sync:
        chunks = list(sync.stream("chat", HI, timeout=30))
    text = "".join(c.body["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "from backup"
    assert chunks[-1].body["choices"][0]["finish_reason"] == "stop"


def test_embeddings_blocks() -> None:
    """`embeddings` returns an EmbeddingsReply from the deployment that answered."""
    with make() as sync:
        reply = sync.embeddings("chat", {"input": "x"})
    assert reply.deployment == "primary"
    assert reply.body["object"] == "list"


def test_close_is_idempotent() -> None:
    """Closing twice is harmless; the router's deployments are closed once."""
    sync = SyncRouter(Router({"chat": Route([Deployment("d", lambda r: "x")])}))
    assert sync.ask("chat", "hi") == "x"
    sync.close()
    sync.close()
