"""Structured logs: one JSON line per request and per state change, never prompts or keys."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from obs_helpers import HI, two_routes

from failover import Event, FakeClock, Kind, Router
from failover.observability import RequestLogger, configure_logging, redact
from failover.testing import fail


class Captured:
    """What the `failover` logger wrote, as parsed JSON lines."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stream.getvalue().splitlines()]

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == logger]


@pytest.fixture
def logs() -> Iterator[Captured]:
    """JSON lines of the `failover` logger, captured for one test."""
    target = logging.getLogger("failover")
    level, propagate = target.level, target.propagate
    stream = io.StringIO()
    handler = configure_logging("debug", stream=stream, logger="failover")
    target.propagate = False
    yield Captured(stream)
    target.removeHandler(handler)
    target.setLevel(level)
    target.propagate = propagate


async def test_one_line_per_request(router: Router, logs: Captured) -> None:
    """A request writes one JSON line with its id, route, deployment, attempts and latency."""
    RequestLogger(router)
    await router.complete("smart", HI, request_id="req-1")
    (line,) = logs.of("failover.request")
    assert line["msg"] == "request" and line["level"] == "info"
    assert line["request_id"] == "req-1"
    assert (line["route"], line["deployment"], line["outcome"]) == ("smart", "primary", "ok")
    assert line["attempts"] == 1 and line["outcomes"] == ["ok"]
    assert line["latency_ms"] == 0
    assert line["ts"].endswith("Z")


async def test_request_line_lists_every_outcome(clock: FakeClock, logs: Captured) -> None:
    """A failed-over request lists each call's kind and its total latency."""
    router = two_routes(clock, primary=[fail(503, latency=0.2)])
    RequestLogger(router)
    async with clock.autojump():
        await router.complete("smart", HI)
    (line,) = logs.of("failover.request")
    assert line["outcomes"] == ["overloaded", "overloaded", "ok"]
    assert line["deployment"] == "backup" and line["attempts"] == 3
    assert line["latency_ms"] >= 400


async def test_failed_request_is_a_warning(clock: FakeClock, logs: Captured) -> None:
    """A request that no deployment answered is logged at warning with its kind."""
    router = two_routes(clock, primary=[fail(401)], backup=[fail(401)])
    router.plan("fast").slots[0].deployment.script(fail(500))  # type: ignore[attr-defined]
    RequestLogger(router)
    async with clock.autojump():
        with pytest.raises(Exception, match="all deployments failed"):
            await router.complete("smart", HI)
    (line,) = logs.of("failover.request")
    assert line["level"] == "warning"
    assert line["outcome"] == "server_error" and line["deployment"] is None


async def test_never_logs_prompts_or_keys(clock: FakeClock, logs: Captured) -> None:
    """Prompt text and provider keys in error messages never reach the log."""
    router = two_routes(clock, primary=[fail(401, message="bad key sk-live1234567890abcdef")])
    RequestLogger(router)
    for _ in range(3):
        await router.complete("smart", HI)
    text = logs.stream.getvalue()
    assert "secret prompt" not in text
    assert "sk-live1234567890abcdef" not in text
    assert logs.of("failover.event")  # the breaker opened: there was something to leak


async def test_breaker_opening_is_a_warning_line(clock: FakeClock, logs: Captured) -> None:
    """A breaker opening writes one warning line naming the deployment and the states."""
    router = two_routes(clock, primary=[fail(401)])
    RequestLogger(router)
    for _ in range(3):
        await router.complete("smart", HI)
    (line,) = [e for e in logs.of("failover.event") if e["type"] == "breaker"]
    assert line["level"] == "warning" and line["deployment"] == "primary"
    assert line["data"]["old"] == "closed" and line["data"]["new"] == "open"
    assert "closed -> open" in line["msg"]


async def test_request_lines_can_be_turned_off(router: Router, logs: Captured) -> None:
    """With requests=False only events are logged."""
    RequestLogger(router, requests=False)
    await router.complete("smart", HI)
    router.hooks.emit(Event("config", 1.0, "reloaded"))
    assert logs.of("failover.request") == []
    assert [line["msg"] for line in logs.of("failover.event")] == ["reloaded"]


def test_configure_logging_twice_keeps_one_handler() -> None:
    """Calling configure_logging again replaces its handler instead of adding another."""
    target = logging.getLogger("failover.test-config")
    configure_logging("info", stream=io.StringIO(), logger="failover.test-config")
    configure_logging("info", stream=io.StringIO(), logger="failover.test-config")
    assert len(target.handlers) == 1
    target.handlers.clear()


def test_text_format_is_readable() -> None:
    """json=False writes `ts LEVEL logger msg key=value` lines."""
    stream = io.StringIO()
    target = logging.getLogger("failover.test-text")
    target.propagate = False
    configure_logging("info", json=False, stream=stream, logger="failover.test-text")
    target.info("request", extra={"fields": {"route": "smart", "outcomes": ["ok"]}})
    target.handlers.clear()
    line = stream.getvalue().strip()
    assert ' INFO failover.test-text request route=smart outcomes=["ok"]' in line


def test_redact_masks_keys_tokens_and_secret_parameters() -> None:
    """redact() masks sk- keys, Google keys, bearer tokens and key= query values."""
    text = redact(
        "sk-ant-abcdef123456 AIzaSyA1234567890abcdefghij Bearer eyJhbGciOi.x "
        "https://x/v1?key=hunter2&alt=sse"
    )
    assert "abcdef123456" not in text and "1234567890abcdefghij" not in text
    assert "eyJhbGciOi" not in text and "hunter2" not in text
    assert "alt=sse" in text


async def test_a_call_failed_for_local_reasons_is_marked(clock: FakeClock, logs: Captured) -> None:
    """A request whose call failed while the process was saturated lists it under `local`."""
    router = two_routes(clock, primary=[fail(Kind.TIMEOUT)])
    RequestLogger(router)
    router.lag.note(asyncio.get_running_loop().time() + 60, 2.0)  # lag during every call
    await router.complete("smart", HI)
    (line,) = logs.of("failover.request")
    assert line["outcomes"] == ["timeout", "ok"]
    assert line["local"] == ["primary:loop_lag"]


class CountingStream(io.StringIO):
    """A text stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _batching(name: str) -> tuple[logging.Logger, CountingStream]:
    stream = CountingStream()
    target = logging.getLogger(name)
    target.propagate = False
    configure_logging("info", stream=stream, logger=name, batch=True)
    return target, stream


async def test_batching_writes_one_loop_turns_lines_at_once() -> None:
    """With batch=True the lines logged in one turn of the event loop go out in one write."""
    target, stream = _batching("failover.test-batch")
    for n in range(3):
        target.info("line %d", n)
    assert stream.getvalue() == ""
    await asyncio.sleep(0)
    target.handlers.clear()
    assert [orjson.loads(line)["msg"] for line in stream.getvalue().splitlines()] == [
        "line 0",
        "line 1",
        "line 2",
    ]
    assert stream.writes == 1


def test_batching_outside_a_loop_writes_at_once() -> None:
    """With batch=True a line logged outside an event loop is written at once."""
    target, stream = _batching("failover.test-batch-sync")
    target.info("at start-up")
    target.handlers.clear()
    assert orjson.loads(stream.getvalue())["msg"] == "at start-up"


async def test_batching_flush_writes_pending_lines() -> None:
    """Flushing a batching handler writes the lines still waiting for the loop."""
    target, stream = _batching("failover.test-batch-flush")
    target.info("pending")
    (handler,) = target.handlers
    handler.flush()
    target.handlers.clear()
    assert orjson.loads(stream.getvalue())["msg"] == "pending"


def test_batching_lines_left_by_a_closed_loop_go_out_with_the_next() -> None:
    """Lines still pending when their event loop stopped are written in the next loop's turn."""
    target, stream = _batching("failover.test-batch-loops")

    def log_and_stop(loop: asyncio.AbstractEventLoop) -> None:
        target.info("first")
        loop.stop()  # the loop ends with this turn: the write queued behind it never runs

    async def log_and_turn(text: str) -> None:
        target.info(text)
        await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    loop.call_soon(log_and_stop, loop)
    loop.run_forever()
    loop.close()
    assert stream.getvalue() == ""
    asyncio.run(log_and_turn("second"))
    target.handlers.clear()
    assert [orjson.loads(line)["msg"] for line in stream.getvalue().splitlines()] == [
        "first",
        "second",
    ]


class _Keep(logging.Handler):
    """Keeps the records it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_request_records_carry_what_a_log_record_would(router: Router) -> None:
    """A request line's record has the attributes `makeRecord` gives, its own time and fields."""
    RequestLogger(router)
    target = logging.getLogger("failover.request")
    keep, level = _Keep(), target.level
    target.addHandler(keep)
    target.setLevel(logging.INFO)
    try:
        before = time.time()
        await router.complete("smart", HI)
        await router.complete("smart", HI)
        after = time.time()
    finally:
        target.removeHandler(keep)
        target.setLevel(level)
    first, second = keep.records
    expected = target.makeRecord(target.name, logging.INFO, "x", 0, "request", (), None)
    for name in ("name", "levelno", "levelname", "thread", "threadName", "process",
                 "processName", "exc_info", "stack_info"):  # fmt: skip
        assert getattr(second, name) == getattr(expected, name), name
    assert before <= first.created <= second.created <= after
    assert second.msecs == int((second.created - int(second.created)) * 1000)
    assert second.getMessage() == "request"
    assert second.fields["route"] == "smart"  # type: ignore[attr-defined]
    assert first.fields is not second.fields  # type: ignore[attr-defined]


async def test_request_records_come_from_a_record_factory_of_ones_own(
    router: Router, logs: Captured
) -> None:
    """With `logging.setLogRecordFactory`, request lines are made by that factory."""
    RequestLogger(router)
    made: list[str] = []
    default = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default(*args, **kwargs)
        made.append(record.getMessage())
        return record

    logging.setLogRecordFactory(factory)
    try:
        await router.complete("smart", HI)
    finally:
        logging.setLogRecordFactory(default)
    assert "request" in made
