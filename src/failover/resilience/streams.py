"""What a stream may do when it breaks after content reached the caller, and the limits that
decide it broke. Pure policy: no I/O.

    resume  continue   finish the answer on a candidate that supports assistant prefill,
                       else regenerate on one and hold its output until it has reproduced
                       what the caller already has (restart and match)
            restart    restart and match only
            off        end with an error event naming the cause

Limits are learned per deployment: a multiple of its own p99 time to first token and p99
longest silence inside a stream, never below a floor and never above the configured limit,
which holds alone until enough samples exist. So a provider that answers in 1 s and now sits
silent for 20 s is failed over within seconds, while a reasoning model whose first token takes
40 s is not cut (the default first-token limit is 60 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Learning", "Prefill", "Resume", "StreamPolicy", "learned_limit"]


class Resume(StrEnum):
    """How a committed stream that broke is finished."""

    CONTINUE = "continue"
    RESTART = "restart"
    OFF = "off"


class Prefill(StrEnum):
    """How a deployment continues an answer from text the caller already has."""

    NONE = "none"  # it cannot: a trailing assistant message starts a new turn
    ASSISTANT = "assistant"  # a trailing assistant message is continued (Anthropic, Bedrock)
    CONTINUE_FINAL_MESSAGE = "continue_final_message"  # vLLM / SGLang request flags


@dataclass(frozen=True, slots=True)
class Learning:
    """How limits are learned from a deployment's own history."""

    multiple: float = 4.0  # limit = multiple x p99 of what was observed
    floor: float = 5.0  # never below this many seconds (nor above the configured limit)
    min_samples: int = 20  # the configured limit holds alone until this many streams were seen

    def __post_init__(self) -> None:
        if self.multiple < 1:
            raise ValueError("learning multiple must be >= 1")
        if self.floor <= 0:
            raise ValueError("learning floor must be > 0")
        if self.min_samples < 1:
            raise ValueError("learning min_samples must be >= 1")


def learned_limit(
    configured: float | None, p99: float | None, samples: int, learning: Learning | None
) -> float | None:
    """The limit to apply now: learned from `p99` over `samples`, else `configured`.

    Learning only tightens: the configured limit stays the most a call may take.
    """
    if learning is None or p99 is None or samples < learning.min_samples:
        return configured
    learned = max(learning.floor, learning.multiple * p99)
    return learned if configured is None else min(configured, learned)


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """What a route's streams do after they broke, and how much they may spend doing it."""

    resume: Resume = Resume.CONTINUE
    max_recoveries: int = 2  # breaks recovered in one stream; the next one is an error
    max_malformed: int = 3  # malformed events skipped in one stream; the next one breaks it
    heartbeat: float = 5.0  # seconds between keep-alive comments while recovering

    def __post_init__(self) -> None:
        if self.max_recoveries < 0 or self.max_malformed < 0:
            raise ValueError("max_recoveries and max_malformed must be >= 0")
        if self.heartbeat <= 0:
            raise ValueError("heartbeat must be > 0")
