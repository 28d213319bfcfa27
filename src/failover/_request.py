"""One request on its way through the router, and one call of it in flight.

`RequestState` is handed to every level of the router and to every decision, the way
tenacity hands one `RetryCallState` to each strategy: the request, its trace and deadline,
what to ask each deployment (`Operation`), and the last failure so far.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from ._local import CallInfo
from .controls import DEFAULT, Controls
from .errors import ProviderError
from .quota import Quota, estimate_tokens
from .resilience.breaker import Permit
from .resilience.concurrency import AdaptiveLimit
from .route import Plan, Slot
from .state.base import BreakerLike
from .trace import Attempt, Trace
from .types import Request

__all__ = ["Call", "Operation", "RequestState"]

T = TypeVar("T")


class Operation(abc.ABC, Generic[T]):
    """What an attempt asks of a deployment: a whole answer, embeddings, or a stream's start."""

    #: False when the answer is still arriving as `send` returns (a stream): its outcome is
    #: recorded when it ends, not when it starts.
    ends_on_return: ClassVar[bool] = True
    #: what the request is, in traces: "chat" or "embeddings"
    name: ClassVar[str] = "chat"

    @abc.abstractmethod
    def send(self, call: Call, request: Request) -> Awaitable[T]:
        """Ask `call.slot`'s deployment; raise what it raised. (An `async def` will do; a plain
        method may hand back the deployment's own coroutine, one level less to resume.)"""

    async def discard(self, answer: T) -> Call | None:
        """Let go of an answer nobody will read (a hedge race's loser that answered in the
        same turn as its winner); the call still to be recorded, if any."""
        return None


@dataclass(slots=True, eq=False)
class RequestState(Generic[T]):
    """Everything the router knows about one request while it runs."""

    plan: Plan  # the route asked for (fallback routes are walked from it)
    request: Request
    trace: Trace
    deadline: float  # on the router clock's now(); inf for none
    operation: Operation[T]
    controls: Controls = DEFAULT  # what the request chose for itself
    last: ProviderError | None = None  # the latest failure, what the caller sees if none answers
    estimated: int | None = None  # tokens it may use: counted when a quota first asks

    def tokens(self) -> int:
        """A rough count of the tokens this request may use (prompt and answer)."""
        if self.estimated is None:
            self.estimated = estimate_tokens(self.request)
        return self.estimated


@dataclass(slots=True, eq=False)
class Call:
    """One attempt in flight: its deployment, breaker permit, trace entry and start time, and
    the deployment's concurrency limit and quota (looked up once, for the outcome too)."""

    plan: Plan
    slot: Slot
    breaker: BreakerLike
    permit: Permit | None  # None: admitted in panic, without the breaker's leave
    attempt: Attempt
    started: float
    info: CallInfo
    limit: AdaptiveLimit
    quota: Quota
