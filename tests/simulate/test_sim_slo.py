"""SLO assertions: parsing, units, verdicts."""

from __future__ import annotations

import pytest

from failover.simulate.slo import Verdict, format_value, parse_assertion


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold"),
    [
        ("availability>=99.9%", "availability", ">=", 0.999),
        ("availability >= 0.95", "availability", ">=", 0.95),
        ("p99<=500ms", "p99", "<=", 0.5),
        ("p99.9 < 2s", "p99.9", "<", 2.0),
        ("ttft_p50<=300ms", "ttft_p50", "<=", 0.3),
        ("attempts<=1.2", "attempts", "<=", 1.2),
        ("failed<=0", "failed", "<=", 0.0),
        ("detect<=1s", "detect", "<=", 1.0),
        ("recover < 30s", "recover", "<", 30.0),
        ("faulted_calls <= 10", "faulted_calls", "<=", 10.0),
        ("blamed_calls <= 0", "blamed_calls", "<=", 0.0),
        ("broken_streams >= 20", "broken_streams", ">=", 20.0),
        ("recovered_streams>=5", "recovered_streams", ">=", 5.0),
        ("unrecovered_streams <= 0", "unrecovered_streams", "<=", 0.0),
        ("stream_recovery >= 100%", "stream_recovery", ">=", 1.0),
        ("stream_recovery >= 0.9", "stream_recovery", ">=", 0.9),
        ("continued_recoveries >= 1", "continued_recoveries", ">=", 1.0),
        ("restarted_recoveries <= 0", "restarted_recoveries", "<=", 0.0),
    ],
)
def test_assertions_parse_with_their_units(
    text: str, metric: str, op: str, threshold: float
) -> None:
    """Each metric reads its threshold in its own unit."""
    a = parse_assertion(text)
    assert (a.metric, a.op) == (metric, op)
    assert a.threshold == pytest.approx(threshold)


def test_a_share_above_everything_is_refused() -> None:
    """A stream recovery share is between 0% and 100%, like availability."""
    with pytest.raises(ValueError, match="stream_recovery is between 0% and 100%"):
        parse_assertion("stream_recovery >= 120%")


def test_a_time_without_a_unit_is_refused() -> None:
    """`p99<=500` is ambiguous, so it is an error rather than 500 seconds."""
    with pytest.raises(ValueError, match="unit"):
        parse_assertion("p99<=500")


def test_an_unknown_metric_lists_the_known_ones() -> None:
    """A typo in the metric says which metrics exist."""
    with pytest.raises(ValueError, match="known: availability"):
        parse_assertion("availabilty>=99%")


def test_an_unreadable_assertion_shows_the_form() -> None:
    """Text that is not METRIC OP VALUE explains the form."""
    with pytest.raises(ValueError, match="METRIC OP VALUE"):
        parse_assertion("p99 about 2s")


def test_an_unmeasured_value_fails_the_assertion() -> None:
    """A metric that could not be measured (a fault never detected) does not pass."""
    verdict = Verdict(parse_assertion("detect<=1s"), None)
    assert not verdict.passed
    assert verdict.describe() == "detect <= 1s: got not measured"


def test_values_are_shown_in_the_units_people_write() -> None:
    """Availability as a percentage, times in ms or s."""
    assert format_value("availability", 0.9995) == "99.95%"
    assert format_value("stream_recovery", 1.0) == "100%"
    assert format_value("recovered_streams", 12.0) == "12"
    assert format_value("p99", 0.412) == "412ms"
    assert format_value("recover", 6.534) == "6.53s"
    assert format_value("attempts", 1.0) == "1.00"
