"""SLO assertions: `availability >= 99.9%`, `p99 <= 500ms`, `detect <= 1s` — a CI gate.

metric               unit        what
availability         % or 0..1   requests answered / requests sent
failed               count       requests that got an error
p50, p99.9..         ms, s       client-seen latency percentile (any pNN)
ttft_p99 ..          ms, s       streams: time to first chunk percentile
attempts             number      deployment calls per request, on average
faulted_calls        count       calls that reached a deployment while a fault was on it
blamed_calls         count       calls that failed as their deployment's fault (in-process)
streams              count       requests that streamed
broken_streams       count       streams that broke after content reached the client
recovered_streams    count       broken streams that still gave the client the whole answer
unrecovered_streams  count       broken streams that ended in an error
stream_recovery      % or 0..1   recovered / broken streams (not measured when none broke)
continued_recoveries count       breaks recovered by continuing the answer (in-process)
restarted_recoveries count       breaks recovered by restarting and matching (in-process)
detect               ms, s       worst fault start -> breaker open / unhealthy / cooling down
recover              ms, s       worst fault end -> the deployment answering again
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import parse_duration

__all__ = [
    "Assertion",
    "Verdict",
    "evaluate",
    "format_seconds",
    "format_value",
    "is_percentile",
    "parse_assertion",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_EXPR = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*(>=|<=|>|<)\s*(\S+)\s*$", re.IGNORECASE)
_PERCENTILE = re.compile(r"^(ttft_)?p(\d{1,2}(?:\.\d+)?)$")
_COUNTS = {
    "failed",
    "faulted_calls",
    "blamed_calls",
    "streams",
    "broken_streams",
    "recovered_streams",
    "unrecovered_streams",
    "continued_recoveries",
    "restarted_recoveries",
}
_SHARES = {"availability", "stream_recovery"}
_TIMES = {"detect", "recover"}
_PLAIN = {"attempts"}
METRICS = (
    "availability",
    "failed",
    "pNN",
    "ttft_pNN",
    "attempts",
    "faulted_calls",
    "blamed_calls",
    "streams",
    "broken_streams",
    "recovered_streams",
    "unrecovered_streams",
    "stream_recovery",
    "continued_recoveries",
    "restarted_recoveries",
    "detect",
    "recover",
)


@dataclass(frozen=True, slots=True)
class Assertion:
    """One `metric op threshold` check."""

    metric: str
    op: str
    threshold: float
    text: str

    def holds(self, value: float | None) -> bool:
        return value is not None and _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {format_value(self.metric, self.threshold)}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """An assertion and the value it was checked against."""

    assertion: Assertion
    value: float | None

    @property
    def passed(self) -> bool:
        return self.assertion.holds(self.value)

    def describe(self) -> str:
        got = (
            "not measured"
            if self.value is None
            else format_value(self.assertion.metric, self.value)
        )
        return f"{self.assertion}: got {got}"


def parse_assertion(text: str) -> Assertion:
    """`p99<=500ms` -> Assertion('p99', '<=', 0.5). Raises ValueError saying what is wrong."""
    m = _EXPR.match(text)
    if m is None:
        raise ValueError(
            f"cannot read assertion {text!r}: write METRIC OP VALUE, e.g. 'p99<=500ms' "
            f"(metrics: {', '.join(METRICS)}; ops: >=, <=, >, <)"
        )
    metric, op, raw = m[1].lower(), m[2], m[3]
    return Assertion(metric, op, _threshold(metric, raw, text), text.strip())


def _threshold(metric: str, raw: str, text: str) -> float:
    try:
        if metric in _SHARES:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
            if not 0 <= value <= 1:
                raise ValueError(f"{metric} is between 0% and 100%")
            return value
        if metric in _COUNTS or metric in _PLAIN:
            return float(raw)
        if metric in _TIMES or _PERCENTILE.match(metric):
            if not re.search(r"(ms|s|m|h)$", raw):
                raise ValueError(f"give {metric} a unit, e.g. 500ms or 2s")
            return parse_duration(raw)
    except ValueError as exc:
        raise ValueError(f"assertion {text!r}: {exc}") from None
    raise ValueError(f"assertion {text!r}: unknown metric {metric!r} (known: {', '.join(METRICS)})")


def evaluate(assertions: list[Assertion], metrics: Mapping[str, float | None]) -> list[Verdict]:
    """Check each assertion against `metrics` (see `failover.simulate.report.Report.metric`)."""
    return [Verdict(a, metrics.get(a.metric)) for a in assertions]


def format_value(metric: str, value: float) -> str:
    """A value in the unit people write it in: 99.95%, 412ms, 1.3s, 2, 1.04."""
    if metric in _SHARES:
        return f"{value * 100:.3f}".rstrip("0").rstrip(".") + "%"
    if metric in _COUNTS:
        return f"{value:g}"
    if metric in _PLAIN:
        return f"{value:.2f}"
    return format_seconds(value)


def format_seconds(value: float) -> str:
    """0.42ms, 412ms, 6.53s, 12.3s."""
    if value < 0.001 and value != 0:
        return f"{value * 1000:.2f}ms"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    text = f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return text.rstrip("0").rstrip(".") + "s"


def is_percentile(metric: str) -> tuple[bool, float] | None:
    """(ttft?, q) for `p99` / `ttft_p50`, else None."""
    m = _PERCENTILE.match(metric)
    return (bool(m[1]), float(m[2])) if m else None
