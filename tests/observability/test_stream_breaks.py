"""Streams that broke after content reached the caller, as observers see them: the
`failover_stream_breaks_total` counter (from the router's `stream` hook) and the request log
line of the stream."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from failover import FakeClock, Kind, RetryPolicy, Route, Router, StreamInterrupted, Timeouts
from failover.events import StreamBreak
from failover.observability import Metrics, RequestLogger, configure_logging
from failover.observability.metrics import OTHER
from failover.resilience.streams import Prefill
from failover.testing import ScriptedDeployment, Step, fail, ok

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
WORDS = ("The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog.")
BREAKS = "failover_stream_breaks_total"


def cut_after(n: int) -> Step:
    """The whole answer, its connection dropped after `n` pieces."""
    return fail(Kind.CONNECTION, after_chunks=n, chunks=WORDS)


def chat(clock: FakeClock, backup: ScriptedDeployment) -> Router:
    """Route "chat": a primary whose stream is cut after 4 words, then `backup`."""
    primary = ScriptedDeployment("primary", cut_after(4), fail(500), clock=clock)
    route = Route([primary, backup], retry=RetryPolicy(attempts=1))
    return Router({"chat": route}, clock=clock, timeouts=Timeouts(learn=None))


async def drain(router: Router) -> str:
    """Read one stream of "chat" to its end; its text."""
    reply = await router.open_stream("chat", HI)
    return "".join([c.body["choices"][0]["delta"].get("content") or "" async for c in reply])


def breaks(metrics: Metrics, outcome: str, deployment: str = "primary") -> float:
    labels = {"route": "chat", "deployment": deployment, "kind": "connection", "outcome": outcome}
    return metrics.registry.get_sample_value(BREAKS, labels) or 0.0


async def test_a_break_finished_by_prefill_counts_as_continued(clock: FakeClock) -> None:
    """A break another deployment finished by continuing the answer is counted `continued`,
    against the deployment that broke and how it broke."""
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    router = chat(clock, backup)
    metrics = Metrics(router)
    await drain(router)
    assert breaks(metrics, "continued") == 1.0
    assert breaks(metrics, "restarted") == breaks(metrics, "failed") == 0.0


async def test_a_break_finished_by_a_restart_counts_as_restarted(clock: FakeClock) -> None:
    """A break finished by regenerating the answer and matching it is counted `restarted`."""
    router = chat(clock, ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock))
    metrics = Metrics(router)
    assert await drain(router) == "".join(WORDS)
    assert breaks(metrics, "restarted") == 1.0


async def test_a_break_nobody_finished_counts_as_failed(clock: FakeClock) -> None:
    """A break no candidate could finish is counted `failed`."""
    router = chat(clock, ScriptedDeployment("backup", ok("Something else."), clock=clock))
    metrics = Metrics(router)
    with pytest.raises(StreamInterrupted):
        await drain(router)
    assert breaks(metrics, "failed") == 1.0


def test_break_labels_stay_within_the_configured_names(clock: FakeClock) -> None:
    """Names the configuration does not know and outcomes outside the vocabulary are
    counted as `_other`: a break cannot create a new time series."""
    router = chat(clock, ScriptedDeployment("backup", ok(), clock=clock))
    metrics = Metrics(router)
    odd = StreamBreak("nowhere", "stranger", Kind.CONNECTION, 3, outcome="vanished")
    router.hooks.broke(odd)
    labels = {"route": OTHER, "deployment": OTHER, "kind": "connection", "outcome": OTHER}
    assert metrics.registry.get_sample_value(BREAKS, labels) == 1.0


def test_detached_metrics_count_no_breaks(clock: FakeClock) -> None:
    """After `detach` the stream hook no longer reaches the metrics."""
    router = chat(clock, ScriptedDeployment("backup", ok(), clock=clock))
    metrics = Metrics(router)
    metrics.detach()
    router.hooks.broke(StreamBreak("chat", "primary", Kind.CONNECTION, 3, outcome="failed"))
    assert breaks(metrics, "failed") == 0.0


async def test_the_request_line_shows_the_recovery(clock: FakeClock) -> None:
    """A recovered stream's request line says how much the caller had when it broke and
    each try to finish it: a refused prefill, then a restart."""
    backup = ScriptedDeployment(
        "backup", fail(400), ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT
    )
    router = chat(clock, backup)
    stream = io.StringIO()
    target = logging.getLogger("failover.request")
    level = target.level
    handler = configure_logging("info", stream=stream, logger="failover.request")
    try:
        RequestLogger(router)
        await drain(router)
    finally:
        target.removeHandler(handler)
        target.setLevel(level)
    (line,) = [orjson.loads(text) for text in stream.getvalue().splitlines()]
    assert line["outcome"] == "ok" and line["deployment"] == "backup"
    assert line["broke_after_chars"] == len("The quick brown fox ")
    assert line["recoveries"] == ["continue:backup:bad_request", "restart:backup:ok"]
