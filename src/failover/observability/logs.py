"""Structured logs: JSON lines through stdlib `logging`, one line per request and per event.

    {"ts":"2025-01-01T12:00:00.123Z","level":"info","logger":"failover.request","msg":"request",
     "request_id":"9f2c...","route":"smart","deployment":"anthropic/claude","outcome":"ok",
     "attempts":2,"outcomes":["server_error","ok"],"latency_ms":412.5}

A stream that broke after content reached the caller adds `broke_after_chars` and its
`recoveries` (`["continue:anthropic/claude:ok"]`, empty when none could be tried). Calls that
failed for the process's own reasons add `local` (`["openai/gpt-4o:pool_wait"]`).

Never a prompt, a completion or a key: request lines hold names, kinds and timings only, and
free text that comes from providers (error messages in events) goes through `redact` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from .._aio import running_loop_or_none
from ..clock import Clock
from ..errors import Kind
from ..events import Event
from ..router import Router
from ..trace import Attempt, Trace

__all__ = [
    "BatchingHandler",
    "JsonFormatter",
    "RequestLogger",
    "TextFormatter",
    "configure_logging",
    "event_fields",
    "redact",
    "request_fields",
]

request_log = logging.getLogger("failover.request")
event_log = logging.getLogger("failover.event")

_SECRETS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{16,}"), "AIza***"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]+=*"), "Bearer ***"),
    (
        re.compile(r"(?i)\b(api[_-]?key|key|token|secret|password|sig)=([^&\s\"']+)"),
        r"\1=***",
    ),
)
# kinds that are the caller's doing, or nobody's fault: logged at INFO, the rest at WARNING
_QUIET_KINDS = frozenset(
    {Kind.OK, Kind.BAD_REQUEST, Kind.CANCELLED, Kind.CONTEXT_WINDOW, Kind.CONTENT_FILTER}
)
_LOUD_STATES = frozenset({"open", "forced_open"})
_KIND_TEXT: dict[object, str] = {kind: kind.value for kind in Kind}  # quicker than `.value`


def redact(text: str) -> str:
    """`text` with anything that looks like an API key, token or secret query value masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


# -- formatters ---------------------------------------------------------------------------------


_last_second: list[Any] = [None, ""]  # (whole second, its "YYYY-MM-DDTHH:MM:SS" text)


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds; the date part is formatted once per second."""
    second = int(created)
    if _last_second[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second[:] = [second, text]
    return f"{_last_second[1]}.{int((created - second) * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger msg key=value ...` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), record.levelname, record.name, record.getMessage()]
        for key, value in _fields(record).items():
            shown = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
            parts.append(f"{key}={shown}")
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class BatchingHandler(logging.StreamHandler[IO[str]]):
    """A stream handler that writes the lines of one event-loop iteration together.

    A gateway finishes many requests in one turn of its loop under load; one `write` for all
    of their lines instead of a write and a flush each is a system call less per request.
    Lines are formatted at once and written by a callback queued behind the callbacks the
    loop is running now (or when the handler is flushed or closed: at exit too); records
    emitted outside a running loop (start-up, other threads) are written at once, as
    `StreamHandler` does.
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None  # where the write is queued

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        loop = running_loop_or_none()
        if loop is None:
            self._write([line])
            return
        if self._scheduled is not loop:  # none queued yet, or on a loop that has gone since
            self._scheduled = loop
            loop.call_soon(self._write_pending)
        self._pending.append(line)

    def flush(self) -> None:
        self._write_pending()
        super().flush()

    def _write_pending(self) -> None:
        with self.lock or _NO_LOCK:
            lines, self._pending, self._scheduled = self._pending, [], None
            if lines:
                self._write(lines)

    def _write(self, lines: list[str]) -> None:
        try:
            self.stream.write("\n".join(lines) + self.terminator)
            super().flush()
        except Exception:  # as StreamHandler: a failed write must not fail a request
            self.handleError(logging.makeLogRecord({"msg": "writing log lines failed"}))


_NO_LOCK = contextlib.nullcontext()


def configure_logging(
    level: int | str = "info",
    *,
    json: bool = True,
    stream: IO[str] | None = None,
    logger: str = "",
    batch: bool = False,
) -> logging.Handler:
    """Send `logger`'s records (the root's by default) to `stream` as JSON lines or text.

    `batch`: write the lines of one event-loop iteration together (`BatchingHandler`), as a
    server under load wants. Calling it again replaces the handler it installed before, so it
    is safe to call twice.
    """
    target = logging.getLogger(logger)
    for old in list(target.handlers):
        if getattr(old, "_failover", False):
            target.removeHandler(old)
    stream = stream or sys.stderr
    handler: logging.StreamHandler[IO[str]]
    handler = BatchingHandler(stream) if batch else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    handler._failover = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


# -- what is logged -----------------------------------------------------------------------------


def request_fields(trace: Trace, kind: Kind, latency: float | None) -> dict[str, Any]:
    """The fields of one request line: names, kinds and timings only."""
    winner = trace.winner if kind is Kind.OK else None
    outcomes: list[str] = []
    skipped: list[str] = []
    local: list[str] = []
    recoveries: list[str] = []
    broke: Attempt | None = None  # the stream that broke after content reached the caller
    for a in trace.attempts:  # one pass: this runs for every request
        if a.skipped is not None:
            skipped.append(f"{a.deployment}:{a.skipped}")
            continue
        outcome = "cancelled" if a.cancelled else _KIND_TEXT.get(a.kind) or a.kind.value
        outcomes.append(outcome)
        if a.local is not None:
            local.append(f"{a.deployment}:{a.local}")
        if a.recovery is not None:
            recoveries.append(f"{a.recovery}:{a.deployment}:{outcome}")
        elif broke is None and a.delivered is not None:
            broke = a
    fields: dict[str, Any] = {
        "request_id": trace.request_id,
        "route": trace.route,
        "deployment": winner.deployment if winner is not None else None,
        "outcome": _KIND_TEXT.get(kind) or str(getattr(kind, "value", kind)),
        "attempts": len(outcomes),
        "outcomes": outcomes,
        "latency_ms": round(latency * 1000, 3) if latency is not None else None,
    }
    if skipped:
        fields["skipped"] = skipped
    if local:  # failed while the process was saturated: blamed on no deployment
        fields["local"] = local
    if broke is not None:
        # a stream that broke after content reached the caller: how much the caller had, and
        # each try to finish it as `mode:deployment:outcome` (`restart:openai/gpt-4o:ok`)
        fields["broke_after_chars"] = broke.delivered
        fields["recoveries"] = recoveries
    if winner is not None and winner.route != trace.route:
        fields["fallback_route"] = winner.route
    return fields


def event_fields(event: Event) -> dict[str, Any]:
    """The fields of one event line, provider text redacted."""
    fields: dict[str, Any] = {"type": event.type, "at": event.at}
    if event.route is not None:
        fields["route"] = event.route
    if event.deployment is not None:
        fields["deployment"] = event.deployment
    if event.data:
        fields["data"] = {k: redact(v) if isinstance(v, str) else v for k, v in event.data.items()}
    return fields


def _event_level(event: Event) -> int:
    loud = (
        event.type == "panic"
        or (event.type == "breaker" and event.data.get("new") in _LOUD_STATES)
        or (event.type == "health" and event.data.get("healthy") is False)
        or (event.type == "chaos" and event.data.get("enabled") is True)
    )
    return logging.WARNING if loud else logging.INFO


def _latency(trace: Trace, clock: Clock) -> float | None:
    started = getattr(trace, "started", None)  # set by routers that record when a request began
    if isinstance(started, float):
        return clock.now() - started
    # otherwise: the calls and waits one after another (hedges overlap, so they are left out)
    calls = [a for a in trace.attempts if a.skipped is None and not a.hedge]
    return sum(a.latency + a.waited for a in calls) if calls else None


class RequestLogger:
    """Logs one line per finished request and one per event of a router."""

    def __init__(self, router: Router, *, requests: bool = True, events: bool = True) -> None:
        self.router = router
        self.requests = requests
        self.events = events
        self.attach()

    def attach(self) -> None:
        hooks = self.router.hooks
        if self.requests and self.on_request not in hooks.request:
            hooks.request.append(self.on_request)
        if self.events and self.on_event not in hooks.event:
            hooks.event.append(self.on_event)

    def detach(self) -> None:
        hooks = self.router.hooks
        if self.on_request in hooks.request:
            hooks.request.remove(self.on_request)
        if self.on_event in hooks.event:
            hooks.event.remove(self.on_event)

    def on_request(self, trace: Trace, kind: Kind) -> None:
        level = logging.INFO if kind in _QUIET_KINDS else logging.WARNING
        if request_log.isEnabledFor(level):
            fields = request_fields(trace, kind, _latency(trace, self.router.clock))
            _log(request_log, level, "request", fields)

    def on_event(self, event: Event) -> None:
        level = _event_level(event)
        if event_log.isEnabledFor(level):
            _log(event_log, level, redact(event.message), event_fields(event))


def _log(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    logger.handle(_record(logger, level, message, fields))


# A record's attributes that are the same for every line of one logger, level and thread (where
# the line says it comes from, the process and thread names), by (logger, level, thread).
_templates: dict[tuple[str, int, int], dict[str, Any]] = {}
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_templates.clear)  # a child is another process


def _record(
    logger: logging.Logger, level: int, message: str, fields: dict[str, Any]
) -> logging.LogRecord:
    """The `LogRecord` `makeRecord` would make, for a fraction of its cost.

    `LogRecord.__init__` asks for the thread, the process and its name and works out the file
    name for each line, where a gateway writes one line per request: those are copied from a
    record made once, and only the time is taken anew. (A `makeRecord` call skips, too, the
    search of the call stack for the caller that `Logger.log` makes; these lines say where they
    come from in their logger's name anyway.) With a record factory of someone else's, records
    are made by it, as usual.
    """
    if logging.getLogRecordFactory() is not logging.LogRecord:
        extra = {"fields": fields}
        return logger.makeRecord(logger.name, level, __file__, 0, message, (), None, extra=extra)
    key = (logger.name, level, threading.get_ident())
    template = _templates.get(key)
    if template is None:
        made = logger.makeRecord(logger.name, level, __file__, 0, "", (), None)
        template = _templates[key] = dict(made.__dict__)
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__.update(template)
    created = time.time()
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord does
    record.relativeCreated = template["relativeCreated"] + (created - template["created"]) * 1000
    if "taskName" in template and getattr(logging, "logAsyncioTasks", False):
        # Python 3.12+: the task that logs, as LogRecord finds it
        loop = running_loop_or_none()
        task = asyncio.current_task(loop) if loop is not None else None
        record.taskName = task.get_name() if task is not None else None
    record.msg = message
    record.__dict__["fields"] = fields
    return record
