"""Fail unless the core (policies, router, config, errors) is covered to at least 90%.

Reads the .coverage data that `make test` just wrote.
"""

from __future__ import annotations

import sys

import coverage

CORE = (
    "resilience/",
    "router.py",
    "race.py",
    "route.py",
    "reply.py",
    "config/",
    "errors.py",
    "classify.py",
    "clock.py",
    "stats.py",
    "trace.py",
    "state/memory.py",
)
THRESHOLD = 90.0


def main() -> int:
    cov = coverage.Coverage()
    cov.load()
    files = [f for f in cov.get_data().measured_files() if any(f"failover/{c}" in f for c in CORE)]
    total = cov.report(morfs=files, show_missing=False, skip_covered=True, file=sys.stdout)
    verdict = "ok" if total >= THRESHOLD else "TOO LOW"
    print(f"core coverage: {total:.1f}% (needs >= {THRESHOLD:.0f}%): {verdict}")
    return 0 if total >= THRESHOLD else 1


if __name__ == "__main__":
    sys.exit(main())
