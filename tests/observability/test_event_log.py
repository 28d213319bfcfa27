"""The bounded ring of recent events behind /admin/events."""

from __future__ import annotations

import pytest
from obs_helpers import HI, two_routes

from failover import Event, FakeClock
from failover.observability import EventLog
from failover.testing import fail


def event(message: str, type_: str = "breaker", at: float = 1.0) -> Event:
    return Event(type_, at, message, deployment="d")


def test_keeps_only_the_newest() -> None:
    """Past `keep` events, the oldest are forgotten."""
    log = EventLog(keep=3)
    for i in range(5):
        log.add(event(f"e{i}"))
    assert [e["message"] for e in log.recent()] == ["e2", "e3", "e4"]
    assert len(log) == 3 and log.total == 5


def test_consecutive_repeats_are_folded() -> None:
    """An event identical to the previous one raises its count instead of taking a slot."""
    log = EventLog(keep=2)
    log.add(event("rare"))
    for i in range(100):
        log.add(event("falling back to fast", "fallback", at=float(i)))
    kept = log.recent()
    assert [e["message"] for e in kept] == ["rare", "falling back to fast"]
    assert kept[1]["count"] == 100 and kept[1]["last_at"] == 99.0
    assert "count" not in kept[0]


def test_recent_filters_by_id_type_and_limit() -> None:
    """recent() returns events after an id, of a type, the newest `limit` of them."""
    log = EventLog()
    for i in range(6):
        log.add(event(f"e{i}", "health" if i % 2 else "breaker"))
    first_id = log.recent()[0]["id"]
    assert [e["message"] for e in log.recent(after=first_id + 3)] == ["e4", "e5"]
    assert [e["message"] for e in log.recent(type="health")] == ["e1", "e3", "e5"]
    assert [e["message"] for e in log.recent(2)] == ["e4", "e5"]
    assert log.recent(0) == []


def test_events_are_redacted() -> None:
    """Secrets in an event's message or data are masked in what the ring serves."""
    log = EventLog()
    log.add(
        Event("health", 1.0, "down: bad key sk-abcdef1234567", data={"error": "sk-zyx987654321"})
    )
    (served,) = log.recent()
    assert "sk-abcdef1234567" not in served["message"]
    assert served["data"]["error"] == "sk-***"


async def test_attached_log_records_breaker_openings(clock: FakeClock) -> None:
    """Attached to a router, the ring records a breaker opening as it happens."""
    router = two_routes(clock, primary=[fail(401)])
    log = EventLog().attach(router)
    for _ in range(3):
        await router.complete("smart", HI)
    (opened,) = log.recent(type="breaker")
    assert opened["deployment"] == "primary"
    assert opened["data"] == {"old": "closed", "new": "open", "open_for": 30.0}


def test_keep_must_be_positive() -> None:
    """A ring of zero events is a configuration mistake."""
    with pytest.raises(ValueError):
        EventLog(keep=0)
