"""Process-wide tuning of a serving gateway process (`failover serve`, and each of its
`--workers`): the cyclic garbage collector."""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a long-running server.

    Objects alive now (modules, config, router) are frozen out of every future collection.
    Requests leave no reference cycles of ours (tests/server/test_cycles.py), so in normal
    traffic a collection frees nothing: it comes when the objects alive have grown by the
    young threshold since their lowest point, and they rise and fall with the requests in
    flight. CPython's 700 would collect every few requests (20,000 first measured ~12% less
    CPU per request); at 20,000, 1,024 busy streams swung past it 3-7 times a second (3-8%
    of the gateway's CPU, 9-20 ms each), at 50,000 once every two or three seconds (~1%).

    The middle generation is collected at every other young collection: it scans what
    survived them, and while thousands of streams open that is most of what they allocate,
    so a pause is bounded by two young thresholds (~40 ms in the held-streams ramp, as with
    20,000 and every 5). Every 50, as first set, made one ~0.45 s pause, the loop late and
    new streams shed for it; 100,000 and every 5, pauses up to 0.26 s. Full collections keep
    their cadence: one is considered every 1,000 middle ones (~100 million allocations).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 1, 1_000)
