"""The router's decisions as plain functions of a hand-built request state."""

from __future__ import annotations

import pytest

from failover._decisions import fallback_routes, should_panic, tries_allowed
from failover._operations import COMPLETE
from failover._request import RequestState
from failover.errors import error_for
from failover.kinds import Kind
from failover.resilience.panic import Panic
from failover.resilience.retry import RetryPolicy
from failover.route import Plan
from failover.trace import Attempt, Skip, Trace
from test_route import plan_of


def state_of(plan: Plan, *attempts: Attempt) -> RequestState[object]:
    trace = Trace(plan.name, "r1", list(attempts))
    return RequestState(plan, {"messages": []}, trace, 10.0, COMPLETE)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "tries"),
    [
        (Kind.SERVER_ERROR, 3),
        (Kind.OVERLOADED, 3),
        (Kind.CONNECTION, 2),
        (Kind.TIMEOUT, 1),
        (Kind.RATE_LIMITED, 1),
        (Kind.AUTH, 1),
        (Kind.BAD_REQUEST, 1),
    ],
)
def test_tries_allowed_follow_the_kind_table(kind: Kind, tries: int) -> None:
    """Backoff kinds get every configured try, connection errors one retry, the rest none."""
    plan = plan_of()
    plan.retry = RetryPolicy(attempts=3)
    assert tries_allowed(plan, error_for(kind, "x")) == tries


def test_connection_retry_never_exceeds_the_configured_attempts() -> None:
    """With attempts=1 even a connection error is not retried."""
    plan = plan_of()
    plan.retry = RetryPolicy(attempts=1)
    assert tries_allowed(plan, error_for(Kind.CONNECTION, "reset")) == 1


def test_failover_kinds_continue_with_the_route_fallbacks() -> None:
    """A server error continues with the route's own fallbacks."""
    plan = plan_of(fallbacks=["cheap"], context_window=["big"])
    assert fallback_routes(plan, error_for(Kind.SERVER_ERROR, "x")) == ["cheap"]


def test_context_window_goes_only_to_its_own_fallbacks() -> None:
    """A context-window failure skips `fallbacks` and goes to `context_window_fallbacks`."""
    plan = plan_of(fallbacks=["cheap"], context_window=["big"])
    assert fallback_routes(plan, error_for(Kind.CONTEXT_WINDOW, "x")) == ["big"]


@pytest.mark.parametrize("kind", [Kind.CONTEXT_WINDOW, Kind.CONTENT_FILTER, Kind.BAD_REQUEST])
def test_without_a_fallback_of_its_own_the_error_goes_back(kind: Kind) -> None:
    """No fallback for the kind (or a bad request): the caller gets the error (None)."""
    plan = plan_of(fallbacks=["cheap"])
    assert fallback_routes(plan, error_for(kind, "x")) is None


def test_panic_only_when_nothing_was_called() -> None:
    """A route whose candidates were all ruled out by health panics; one that called does not."""
    plan = plan_of()
    skipped = Attempt("chat", "a", skipped=Skip.UNHEALTHY)
    called = Attempt("chat", "a", kind=Kind.SERVER_ERROR)
    assert should_panic(state_of(plan, skipped))
    assert not should_panic(state_of(plan, skipped, called))
    assert not should_panic(state_of(plan))


def test_open_breakers_panic_only_in_mode_all() -> None:
    """Candidates skipped for open breakers alone panic with ALL, not with HEALTH or OFF."""
    skipped = Attempt("chat", "a", skipped=Skip.OPEN)
    plan = plan_of()
    assert not should_panic(state_of(plan, skipped))
    plan.panic = Panic.ALL
    assert should_panic(state_of(plan, skipped))
    plan.panic = Panic.OFF
    assert not should_panic(state_of(plan, Attempt("chat", "a", skipped=Skip.UNHEALTHY)))
