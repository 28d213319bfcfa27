"""The kind table: what the router does after each kind of failure (DESIGN.md's taxonomy)."""

from __future__ import annotations

import pytest

from failover.kinds import Failover, Kind, KindPolicy, Retry

# (retry same deployment, fail over to, counts against the breaker, cools down) per DESIGN.md
DESIGN_TABLE = {
    Kind.RATE_LIMITED: (Retry.AFTER_COOLDOWN, Failover.NEXT, False, True),
    Kind.OVERLOADED: (Retry.BACKOFF, Failover.NEXT, True, False),
    Kind.SERVER_ERROR: (Retry.BACKOFF, Failover.NEXT, True, False),
    Kind.TIMEOUT: (Retry.NO, Failover.NEXT, True, False),
    Kind.CONNECTION: (Retry.ONCE, Failover.NEXT, True, False),
    Kind.AUTH: (Retry.NO, Failover.NEXT, True, False),
    Kind.NOT_FOUND: (Retry.NO, Failover.NEXT, True, False),
    Kind.CONTEXT_WINDOW: (Retry.NO, Failover.CONTEXT_WINDOW, False, False),
    Kind.CONTENT_FILTER: (Retry.NO, Failover.CONTENT_FILTER, False, False),
    Kind.BAD_REQUEST: (Retry.NO, Failover.NO, False, False),
    Kind.CANCELLED: (Retry.NO, Failover.NO, False, False),
}


@pytest.mark.parametrize(("kind", "row"), list(DESIGN_TABLE.items()))
def test_kind_policy_matches_design_table(
    kind: Kind, row: tuple[Retry, Failover, bool, bool]
) -> None:
    """Each kind's retry, failover, breaker and cool-down rule is DESIGN.md's row."""
    policy = kind.policy
    assert (policy.retry, policy.failover, policy.breaker_failure, policy.cool_down) == row


def test_every_failure_kind_has_a_design_row() -> None:
    """The table covers every kind except OK."""
    assert set(DESIGN_TABLE) == set(Kind) - {Kind.OK}


def test_only_the_next_candidate_kinds_try_the_next_candidate() -> None:
    """`tries_next` is true exactly for the kinds that fail over to the next candidate."""
    assert {k for k in Kind if k.policy.tries_next} == {
        k for k, row in DESIGN_TABLE.items() if row[1] is Failover.NEXT
    }


def test_ok_policy_does_nothing() -> None:
    """Success neither retries, fails over, cools down nor counts as a breaker failure."""
    assert Kind.OK.policy == KindPolicy(Retry.NO, Failover.NO, breaker_failure=False)
