"""The script of `failover demo` and what one run of it shares.

The real gateway runs on the embedded simulated default config — providers sim-a, sim-b, sim-c
behind the routes `smart` (sim-a, then sim-b) and `fast` (sim-c, then sim-b), every one giving
the same answer (`REPLY`) — with breaker and health-check timings shortened so the story fits
in 45 seconds. Clients send OpenAI Chat Completions over HTTP (40% of them streamed)
while the script breaks providers through the admin API (`POST /admin/chaos/{deployment}`):

     0s  calm               every provider healthy
     6s  sim-a down         sim-a refuses every connection
    15s  sim-a back         sim-a's fault is cleared
    20s  sim-a cuts streams every stream from sim-a is cut after 8 words
    29s  sim-a mended       sim-a's fault is cleared
    33s  sim-c brownout     40% of sim-c's calls fail with 503
    40s  all clear          sim-c's fault is cleared; the run ends at 45s
"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...config import Config
from ...defaults import SIMULATED
from .story import Answer, Step

if TYPE_CHECKING:
    from ...server.app import Gateway

__all__ = [
    "CUT_AFTER",
    "HEALTH_EVERY",
    "LENGTH",
    "MAX_OPEN_FOR",
    "MAX_TOKENS",
    "MIX",
    "OPEN_FOR",
    "PROMPTS",
    "REPLY",
    "SCRIPT",
    "STREAMED",
    "Options",
    "Run",
    "demo_config",
]

CUT_AFTER = 8  # words a stream from sim-a delivers before it is cut, in the streams step
SCRIPT: tuple[Step, ...] = (
    Step(0, "calm", "three providers, all healthy: smart -> sim-a, fast -> sim-c", "calm"),
    Step(6, "sim-a down", "every connection to sim-a is refused", "outage", "sim-a",
         ({"type": "reset"},)),
    Step(15, "sim-a back", "sim-a's fault is cleared", "recovery", "sim-a", ()),
    Step(20, "sim-a cuts streams", f"every stream from sim-a is cut after {CUT_AFTER} words",
         "streams", "sim-a", ({"type": "cut_stream", "after_chunks": CUT_AFTER + 1},)),
    Step(29, "sim-a mended", "sim-a's fault is cleared", "recovery", "sim-a", ()),
    Step(33, "sim-c brownout", "40% of sim-c's calls fail with 503", "brownout", "sim-c",
         ({"type": "error", "status": 503, "rate": 0.4},)),
    Step(40, "all clear", "sim-c's fault is cleared", "recovery", "sim-c", ()),
)  # fmt: skip
LENGTH = 45.0  # seconds, at speed 1
OPEN_FOR, MAX_OPEN_FOR, HEALTH_EVERY = 4.0, 8.0, 2.0  # seconds, at speed 1: quick, for a demo
MIX = (("smart", 0.7), ("fast", 0.3))  # which routes the clients ask for
STREAMED = 0.4
PROMPTS = ("Summarise this ticket", "Translate 'hello' to French", "Name three colours", "hi")
REPLY = (
    "A simulated answer, sent word by word: a provider that drops it halfway would leave "
    "you half a sentence, unless the gateway finishes it."
)  # every provider's answer, so a broken stream can be finished anywhere (and checked whole)
MAX_TOKENS = 64  # more than REPLY's words: answers end with finish reason "stop"


def demo_config(speed: float = 1.0) -> Config:
    """The embedded simulated default, with breakers and health checks quick enough for a demo
    (and `speed` times quicker still)."""
    data: dict[str, Any] = copy.deepcopy(SIMULATED)
    for provider in data["providers"].values():
        provider["options"]["reply"] = REPLY
    data["server"] = {"grace": "2s"}
    data["defaults"] = {
        "breaker": {
            "consecutive_failures": 3,
            "open_for": OPEN_FOR / speed,
            "max_open_for": MAX_OPEN_FOR / speed,
        },
        "health": {
            "interval": HEALTH_EVERY / speed,
            "recovery_interval": HEALTH_EVERY / speed,
            "timeout": 1.0,
            "unhealthy_after": 2,
        },
    }
    data["observability"] = {"logs": {"requests": False}}
    return Config.from_dict(data)


@dataclass
class Options:
    """What the command line asked for."""

    port: int = 8080
    speed: float = 1.0
    rate: float = 30.0
    live: bool = True
    keep_serving: bool = False
    seed: int | None = None


@dataclass
class Run:
    """Everything one demo run shares: the clock, the gateway, what clients saw."""

    options: Options
    gateway: Gateway
    url: str
    t0: float = field(default_factory=time.monotonic)  # reset when the script starts
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    interrupted: bool = False

    def now(self) -> float:
        """Seconds since the script started."""
        return time.monotonic() - self.t0
