"""A hand-written, realistic /admin/status over five minutes of a partial outage, in the shape
of `failover.observability.status.snapshot()`: for the README screenshot and the tests of
states a live router rarely shows at once (half-open, forced open, cooling down).

Tick `i` is the status at `START + i * STEP` seconds. Around tick 140 OpenAI's gpt-4o starts
failing, its breaker opens at 150 and health checks mark it down; traffic moves to Claude and
falls back to the `fast` route; a local model flaps; an embeddings deployment is rate-limited.
"""

from __future__ import annotations

import math
import random
from typing import Any

__all__ = ["STEP", "TICKS", "Scenario", "deployment"]

STEP = 1.5
TICKS = 200
START = 1_763_303_270.0  # 2025-11-16 14:27:50 UTC: the last tick is at 14:32:48


def deployment(name: str, breaker: str = "closed", **fields: Any) -> dict[str, Any]:
    """One deployment as status.py reports it; `fields` override the calm defaults."""
    out: dict[str, Any] = {
        "name": name,
        "model": name.split("/", 1)[-1],
        "breaker": {
            "state": breaker,
            "open_remaining_s": None,
            "window_failures": 0,
            "window_calls": 20,
        },
        "healthy": True,
        "cooling_down": False,
        "cooldown_remaining_s": None,
        "available": breaker in ("closed", "half_open", "disabled"),
        "success_rate": 1.0,
        "p50_ms": 100.0,
        "p95_ms": 200.0,
        "latency_ewma_ms": 110.0,
        "ttft_ewma_ms": None,
        "in_flight": 0,
        "samples": 200,
        "last_error": None,
        "health": {
            "probe": "models",
            "probes": 40,
            "consecutive_failures": 0,
            "consecutive_successes": 40,
            "in_flight": 0,
            "last": None,
        },
    }
    for key, value in fields.items():
        if key in ("open_remaining_s", "window_failures"):
            out["breaker"][key] = value
        else:
            out[key] = value
    return out


def route(
    strategy: str,
    deployments: list[dict[str, Any]],
    fallbacks: tuple[str, ...] = (),
    hedge: bool = False,
) -> dict[str, Any]:
    available = sum(1 for d in deployments if d["available"])
    state = "ok" if available == len(deployments) else ("degraded" if available else "down")
    return {
        "strategy": strategy,
        "fallbacks": list(fallbacks),
        "hedge": hedge,
        "state": state,
        "available": available,
        "deployments": deployments,
    }


class Scenario:
    """The status at each tick; deterministic."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.tick = 0
        self._walks: dict[int, float] = {}

    def at(self, tick: int) -> float:
        return START + tick * STEP

    def status(self, tick: int | None = None) -> dict[str, Any]:
        i = self.tick if tick is None else tick
        return {
            "at": self.at(i),
            "health": {
                "enabled": True,
                "running": True,
                "probe": "models",
                "interval_s": 15.0,
                "timeout_s": 2.0,
            },
            "routes": {
                "smart": route("priority", [self._gpt4o(i), self._claude(i)], ("fast",), True),
                "fast": route("round_robin", [self._groq(i), self._local(i)]),
                "embed": route("weighted", [self._embed_openai(i), self._embed_azure(i)]),
            },
            "events": self.feed(i)["events"],
        }

    def feed(self, tick: int | None = None) -> dict[str, Any]:
        """What /admin/events answers at a tick."""
        i = self.tick if tick is None else tick
        return {"events": [e for e in self._events() if e["at"] <= self.at(i)]}

    def _noise(self, series: int, scale: float) -> float:
        # percentiles over a window of 200 calls drift, they do not jump: smooth the noise
        walk = 0.85 * self._walks.get(series, 0.0) + 0.15 * self.rng.uniform(-1, 1)
        self._walks[series] = walk
        return scale * 1.6 * walk

    def _gpt4o(self, i: int) -> dict[str, Any]:
        if i < 140:
            return deployment(
                "openai/gpt-4o",
                success_rate=0.997 - abs(self._noise(1, 0.004)),
                p50_ms=780 + self._noise(2, 40),
                p95_ms=1650 + self._noise(3, 120),
                ttft_ewma_ms=410 + self._noise(4, 30),
                in_flight=5 + int(self._noise(5, 2.5)),
            )
        falling = min(1.0, (i - 140) / 10)
        rate = 0.997 - 0.56 * falling + self._noise(6, 0.01)
        if i < 150:
            return deployment(
                "openai/gpt-4o",
                success_rate=rate,
                p50_ms=900 + 600 * falling,
                p95_ms=2200 + 1800 * falling,
                ttft_ewma_ms=520,
                in_flight=7,
                window_failures=int(9 * falling),
                last_error="server_error: HTTP 503",
            )
        return deployment(
            "openai/gpt-4o",
            "open",
            available=False,
            healthy=i < 162,
            success_rate=0.41,
            p50_ms=1480.0,
            p95_ms=4020.0,
            ttft_ewma_ms=560.0,
            window_failures=9,
            open_remaining_s=max(1.0, 120 - (i - 150) * STEP),
            last_error="server_error: HTTP 503 from api.openai.com: upstream connect error or "
            "disconnect/reset before headers. reset reason: overflow",
            health={
                "probe": "models",
                "probes": 52,
                "consecutive_failures": 3,
                "consecutive_successes": 0,
                "in_flight": 0,
                "last": {
                    "ok": False,
                    "outcome": "server_error",
                    "latency_ms": 1204.0,
                    "at": self.at(i) - 4,
                },
            },
        )

    def _claude(self, i: int) -> dict[str, Any]:
        busy = 0 if i < 145 else min(7, (i - 145) // 2)
        return deployment(
            "anthropic/claude-sonnet-4-5",
            success_rate=0.998 - abs(self._noise(7, 0.003)),
            p50_ms=960 + busy * 25 + self._noise(8, 50),
            p95_ms=1880 + busy * 60 + self._noise(9, 120),
            ttft_ewma_ms=520 + self._noise(10, 25),
            in_flight=max(0, busy + int(self._noise(11, 1.5))),
        )

    def _groq(self, i: int) -> dict[str, Any]:
        load = 3 if i > 150 else 1
        return deployment(
            "groq/llama-3.1-70b",
            success_rate=1.0 if i % 37 else 0.995,
            p50_ms=205 + self._noise(12, 15) + 10 * load,
            p95_ms=380 + self._noise(13, 40),
            ttft_ewma_ms=95 + self._noise(14, 8),
            in_flight=load + int(abs(self._noise(15, 1.5))),
        )

    def _local(self, i: int) -> dict[str, Any]:
        wave = 0.5 + 0.5 * math.sin(i / 9)
        error = "timeout: no first token within 20s"
        if i < 160 or i >= 196:
            state = "half_open" if i >= 196 else "closed"
            return deployment(
                "local/llama3.1",
                state,
                success_rate=0.97 - 0.03 * wave,
                p50_ms=620 + 200 * wave,
                p95_ms=1400 + 500 * wave,
                window_failures=1 if state == "closed" else 0,
                last_error=error,
                in_flight=1,
            )
        if i < 176:
            rate = 0.94 - 0.36 * (i - 160) / 16
            return deployment(
                "local/llama3.1",
                success_rate=rate,
                p50_ms=900 + 20 * (i - 160),
                p95_ms=2600 + 90 * (i - 160),
                window_failures=(i - 160) // 2,
                last_error=error,
                in_flight=2,
            )
        return deployment(
            "local/llama3.1",
            "open",
            available=False,
            success_rate=0.58,
            p50_ms=1220.0,
            p95_ms=4040.0,
            window_failures=11,
            open_remaining_s=max(0.5, 30 - (i - 176) * STEP),
            last_error=error,
        )

    def _embed_openai(self, i: int) -> dict[str, Any]:
        cooling = i >= 192
        return deployment(
            "openai/text-embedding-3-small",
            available=not cooling,
            cooling_down=cooling,
            cooldown_remaining_s=max(0.5, 12 - (i - 192) * STEP) if cooling else None,
            success_rate=0.972 if cooling else 0.999,
            p50_ms=88 + self._noise(16, 8),
            p95_ms=170 + self._noise(17, 20),
            in_flight=0 if cooling else 2,
            last_error="rate_limited: HTTP 429 Rate limit reached for requests (retry after 12s)"
            if cooling
            else None,
        )

    def _embed_azure(self, i: int) -> dict[str, Any]:
        return deployment(
            "azure/text-embedding-3-small",
            success_rate=1.0,
            p50_ms=112 + self._noise(18, 10),
            p95_ms=228 + self._noise(19, 25),
            in_flight=1 + (2 if i >= 192 else 0),
        )

    def _events(self) -> list[dict[str, Any]]:
        def ev(
            tick: float,
            type_: str,
            message: str,
            *,
            route: str | None = None,
            deployment: str | None = None,
            count: int = 1,
            **data: Any,
        ) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": 0,
                "type": type_,
                "at": self.at(int(tick)) + 0.37,
                "message": message,
                "route": route,
                "deployment": deployment,
            }
            if data:
                out["data"] = data
            if count > 1:
                out["count"] = count
                out["last_at"] = out["at"] + count * 2.1
            return out

        events = [
            ev(3, "config", "configuration loaded: 3 routes, 6 deployments (generation 4)"),
            ev(
                176,
                "breaker",
                "breaker closed -> open: failure rate 11/20",
                deployment="local/llama3.1",
                old="closed",
                new="open",
                open_for=30.0,
            ),
            ev(
                150,
                "breaker",
                "breaker closed -> open: 3 consecutive failures",
                deployment="openai/gpt-4o",
                old="closed",
                new="open",
                open_for=120.0,
            ),
            ev(151, "fallback", "falling back to fast", route="fast", count=14),
            ev(
                162,
                "health",
                "openai/gpt-4o is unhealthy after 2 failed probe(s): server_error",
                deployment="openai/gpt-4o",
                healthy=False,
                outcome="server_error",
                failures=2,
            ),
            ev(
                196,
                "breaker",
                "breaker open -> half_open: open_for elapsed",
                deployment="local/llama3.1",
                old="open",
                new="half_open",
            ),
        ]
        events.sort(key=lambda e: e["at"])
        for n, e in enumerate(events, start=1):
            e["id"] = n
        return events
