"""Admission at the gateway: each routed request takes room in the process's `Admission`
before it reaches the router, or is answered at once.

    priority   `x-failover-priority` if sent, never above the client key's own priority
               (`server.api_keys[i].priority`); without it, the key's; an open gateway
               (no keys) takes the header as sent, normal by default
    admitted   the handler runs the router inside `with admit(...)`: the room is given back
               when the router has answered (a stream: when it has been relayed to its end)
    shed       503 `gateway_overloaded` (Anthropic API: 529 `overloaded_error`), or 429
               `key_quota_exceeded` for a key over its own quota, with `Retry-After` (whole
               seconds) and `retry-after-ms`, in the API's own error format; the router, the
               upstreams and the breakers never see the request

A shed request gets a request log line (`outcome: "shed"`, INFO), at most 50 a second (the
next line says how many were not logged), and the first shed after a quiet spell a WARNING:
a flood of sheds does not become a flood of log lines.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..clock import Clock, SystemClock, running_loop
from ..controls import Priority
from ..resilience.admission import Admission, Shed, Ticket
from .controls import PRIORITIES, RequestControls
from .errors import ClientError, Failure
from .protocol import ARRIVED

if TYPE_CHECKING:
    from .generation import Generation
    from .http import Call, Message, Receive

__all__ = [
    "SHED_LINES",
    "Admitted",
    "ShedLines",
    "admit",
    "peek",
    "priority_of",
    "refusal",
    "shed_early",
]

SHED_LINES_PER_SECOND = 50
CHECKED = "failover.late_checked"  # the scope key: `shed_early` asked how late the process is
# a key and its value in a raw JSON body, as every client writes them (a key spelled with
# escapes, valid JSON that no SDK sends, is not seen: such a stream is taken for a whole answer)
_STREAM = re.compile(rb'"stream"\s*:\s*(true|false)')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,256})"')

log = logging.getLogger("failover.server")
request_log = logging.getLogger("failover.request")


class Admitted:
    """The room an admitted request holds; given back when the `with` block ends."""

    __slots__ = ("_admission", "_ticket")

    def __init__(self, admission: Admission, ticket: Ticket) -> None:
        self._admission = admission
        self._ticket = ticket

    def __enter__(self) -> Admitted:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._admission.leave(self._ticket)


def admit(
    call: Call,
    gen: Generation,
    route: str,
    controls: RequestControls,
    *,
    stream: bool,
    anthropic: bool = False,
) -> Admitted:
    """Room for this request, or `ClientError` 503/529/429 when it is shed."""
    client = call.client
    asked = controls.router.get("priority")
    priority = priority_of(asked, call)
    if priority is not asked and (asked is not None or priority is not Priority.NORMAL):
        controls.router["priority"] = priority  # the trace echoes the priority it ran at
    key = client.name if client is not None and client.limited else None
    admission = gen.admission
    if call.scope.get(CHECKED):  # `shed_early` asked how late the process is: not twice
        result = admission.admit(route, stream=stream, priority=priority, key=key, late=False)
    else:
        late = _late(call, gen)
        result = admission.admit(route, stream=stream, priority=priority, lag=late, key=key)
    if isinstance(result, Shed):
        _log_shed(call, gen, result)
        raise refusal(result, anthropic=anthropic)
    return Admitted(admission, result)


async def shed_early(call: Call, gen: Generation, *, anthropic: bool = False) -> None:
    """Under pressure, shed a routed request for the process's lateness before its body is
    parsed: `ClientError` 503/529, as `admit` would raise. Its priority comes from its headers;
    only if a request of that priority may be shed now is its raw body looked at, for whether
    it streams and its route (`peek`). A request that cannot be told at a glance goes on to
    `admit`, which decides it in full; one let through after a look is marked so that `admit`
    does not ask how late the process is again (nor rolls its dice twice)."""
    admission = gen.admission
    if not admission.crowded:
        return  # few in flight: nothing more than this
    lag = _late(call, gen)
    if not admission.pressed(lag) or call.content_length > gen.max_body:
        return
    asked = _controls(call.controls)
    if asked is None:
        return
    route, priority = asked[0], priority_of(asked[1], call)
    if not admission.pressed(lag, priority):
        return  # not its priority's turn yet: `admit` lets it in as it always did
    message = await call.receive()
    call.receive = _replay(message, call.receive)
    if message.get("more_body", False):
        return  # a body in parts: a large request, parsed in full by the handler
    seen = peek(message.get("body", b""))
    if seen is None:
        return  # not plain: decided in full by `admit`, as ever
    shed = admission.shed_late(route or seen[0], stream=seen[1], priority=priority, lag=lag)
    if shed is None:
        call.scope[CHECKED] = True
        return
    _log_shed(call, gen, shed)
    raise refusal(shed, anthropic=anthropic)


def peek(body: bytes) -> tuple[str, bool] | None:
    """(model, stream) of a request, read off its raw JSON body without parsing it; None when
    that cannot be told for sure at a glance (the handler will tell): the body must name one
    model and say `"stream": true` or `false` at most once."""
    stream = False
    if b'"stream"' in body:
        flags = _STREAM.findall(body)
        if len(flags) != 1 or body.count(b'"stream"') != 1:
            return None
        stream = flags[0] == b"true"
    models = _MODEL.findall(body)
    if len(models) != 1:
        return None
    return models[0].decode("utf-8", "replace"), stream


def _controls(sent: dict[bytes, bytes] | None) -> tuple[str | None, Priority | None] | None:
    """The route (`x-failover-route`) and priority (`x-failover-priority`) a request asks
    for (of its `Call.controls`), None for either not sent; None for a priority that is not
    one (the handler's 400)."""
    if sent is None:
        return None, None
    route = asked = None
    if (value := sent.get(b"x-failover-priority")) is not None:
        asked = PRIORITIES.get(value.strip().lower().decode("latin-1"))
        if asked is None:
            return None
    if (value := sent.get(b"x-failover-route")) is not None:
        route = value.decode("latin-1").strip() or None
    return route, asked


def _replay(first: Message, receive: Receive) -> Receive:
    """`receive` that gives `first` (already read) once more before going on."""
    pending = [first]

    async def again() -> Message:
        return pending.pop() if pending else await receive()

    return again


def _late(call: Call, gen: Generation) -> float:
    """How late the process is for this request: the loop's smoothed lag, or, when longer,
    how long it waited before the gateway looked at it (a burst that arrived in one read
    shows here at once, before the next lag sample: a burst of thousands of new streams is
    shed, not let in to keep the loop late for seconds)."""
    lag = gen.router.lag.smoothed
    now = running_loop().time()
    gen.sampler.tick(gen.admission, lag, now)
    arrived: float | None = call.scope.get(ARRIVED)
    if arrived is None:  # (served by a protocol that does not note arrivals)
        return lag
    return max(lag, now - arrived)


def priority_of(asked: Priority | None, call: Call) -> Priority:
    """The priority a request runs at: what it asked for, bounded by its key's."""
    if call.client is not None:
        return call.client.grant(asked)
    return asked or Priority.NORMAL


def refusal(shed: Shed, *, anthropic: bool = False) -> ClientError:
    """The error a shed request is answered with, in the status its API uses for it."""
    millis = b"%d" % max(1, math.ceil(shed.retry_after * 1000))
    if shed.client_quota:
        status, code = 429, "key_quota_exceeded"
    else:
        status, code = (529 if anthropic else 503), "gateway_overloaded"
    failure = Failure(
        status,
        shed.message,
        code=code,
        retry_after=shed.retry_after,
        headers=((b"retry-after-ms", millis),),
    )
    return ClientError(failure)


class ShedLines:
    """At most `per_second` request lines for shed requests each second: under overload a
    line per shed would spend on logging the CPU that shedding saves. The next line logged
    says how many sheds before it were not (`unlogged`); the metrics count every one."""

    __slots__ = ("_logged", "_second", "clock", "per_second", "unlogged")

    def __init__(self, per_second: int = SHED_LINES_PER_SECOND, *, clock: Clock | None = None):
        self.per_second = per_second
        self.clock = clock or SystemClock()
        self.unlogged = 0
        self._second = -1
        self._logged = 0

    def take(self) -> int | None:
        """None when this shed goes unlogged; else how many went unlogged before it."""
        second = int(self.clock.now())
        if second != self._second:
            self._second, self._logged = second, 0
        if self._logged >= self.per_second:
            self.unlogged += 1
            return None
        self._logged += 1
        unlogged, self.unlogged = self.unlogged, 0
        return unlogged


SHED_LINES = ShedLines()


def _log_shed(call: Call, gen: Generation, shed: Shed) -> None:
    if shed.starts_episode:
        log.warning("shedding load: %s", shed.message, extra={"fields": _fields(call, shed)})
    if not gen.obs.logger.requests or not request_log.isEnabledFor(logging.INFO):
        return
    unlogged = SHED_LINES.take()
    if unlogged is None:
        return
    fields = _fields(call, shed)
    if unlogged:
        fields["unlogged"] = unlogged
    # makeRecord + handle, as the router's request lines do: no search of the call stack
    record = request_log.makeRecord(
        request_log.name, logging.INFO, __file__, 0, "request", (), None, extra={"fields": fields}
    )
    request_log.handle(record)


def _fields(call: Call, shed: Shed) -> dict[str, Any]:
    """The request line of a shed request: who, which limit, how full."""
    fields: dict[str, Any] = {
        "request_id": call.request_id,
        "route": shed.route,
        "deployment": None,
        "outcome": "shed",
        "attempts": 0,
        "priority": shed.priority,
        "reason": shed.reason,
        "retry_after_s": round(shed.retry_after, 3),
    }
    fields["in_flight"] = int(shed.in_use)
    if shed.limit:
        fields["limit"] = int(shed.limit)
    if shed.reason == "loop_lag":
        fields["late_ms"] = round(shed.late * 1000, 1)
    if call.client is not None:
        fields["key"] = call.client.name
    arrived: float | None = call.scope.get(ARRIVED)
    if arrived is not None:
        fields["waited_ms"] = round((asyncio.get_running_loop().time() - arrived) * 1000, 1)
    return fields
