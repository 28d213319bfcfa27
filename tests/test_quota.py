"""Quota-aware routing: rate-limit headers and configured rpm/tpm steer traffic before a 429."""

from __future__ import annotations

from typing import Any

from failover import FakeClock, Kind, MemoryStore, Route, Router
from failover._local import CURRENT_CALL
from failover.quota import Quota, QuotaPolicy, estimate_tokens
from failover.testing import ScriptedDeployment, fail, ok
from failover.trace import Skip
from failover.types import Completion

HI = {"messages": [{"role": "user", "content": "hi"}]}
WALL = 1_700_000_000.0


def test_openai_headers_say_what_is_left() -> None:
    """One request left until the reset: the deployment is passed over until then."""
    quota = Quota("d")
    quota.observe({"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "6s"},
                  now=100.0, wall=WALL)  # fmt: skip
    assert quota.exhausted(100.0)
    assert not quota.exhausted(106.5)


def test_anthropic_headers_say_what_is_left() -> None:
    """Anthropic's remaining tokens below the request's need pass it over until the reset."""
    quota = Quota("d")
    reset = "2023-11-14T22:13:30Z"  # 10 s after WALL
    quota.observe(
        {
            "anthropic-ratelimit-requests-remaining": "50",
            "anthropic-ratelimit-tokens-remaining": "100",
            "anthropic-ratelimit-tokens-reset": reset,
        },
        now=0.0,
        wall=WALL,
    )
    assert quota.exhausted(0.0, tokens=500)
    assert not quota.exhausted(0.0, tokens=50)
    assert not quota.exhausted(11.0, tokens=500)


def test_calls_in_flight_count_until_new_figures_come() -> None:
    """Four left, three sent: the next is held back; an answer with figures resets it."""
    quota = Quota("d")
    quota.observe({"x-ratelimit-remaining-requests": "4"}, now=0.0, wall=WALL)
    assert not quota.exhausted(0.0)
    for _ in range(3):
        quota.sent(0.0, tokens=10)
    assert quota.exhausted(1.0)
    quota.observe({"x-ratelimit-remaining-requests": "40"}, now=1.0, wall=WALL)
    assert not quota.exhausted(1.0)


def test_configured_rpm_and_tpm_are_counted_a_minute_at_a_time() -> None:
    """With rpm 2, the third call within a minute is held back; a minute later it is not."""
    quota = Quota("d", QuotaPolicy(rpm=3, tpm=1000))
    quota.sent(0.0, tokens=10)
    quota.sent(1.0, tokens=10)
    assert quota.exhausted(2.0, tokens=985)  # tpm: 20 used of 1000 in this minute
    assert not quota.exhausted(2.0, tokens=10)
    quota.sent(2.0, tokens=10)
    assert quota.exhausted(3.0)  # rpm: 3 sent in this minute
    assert not quota.exhausted(62.5)


def test_no_headers_no_steering() -> None:
    """A provider that sends no figures is never held back."""
    quota = Quota("d")
    quota.observe({"content-type": "application/json"}, now=0.0, wall=WALL)
    assert not quota.exhausted(0.0, tokens=10**6)


def test_refuses_counts_tokens_only_when_a_limit_looks_at_them() -> None:
    """Without a token figure or tpm in force, a call's tokens are never worked out."""
    asked: list[int] = []

    def tokens() -> int:
        asked.append(1)
        return 500

    quota = Quota("d", QuotaPolicy(rpm=10))
    assert not quota.refuses(0.0, tokens)
    quota.observe({"x-ratelimit-remaining-tokens": "100"}, now=0.0, wall=WALL)
    assert not asked
    assert quota.refuses(0.0, tokens)  # 500 needed, 100 left
    assert asked == [1]


def test_refuses_agrees_with_exhausted() -> None:
    """`refuses` answers as `exhausted` does, for requests and tokens figures alike."""
    quota = Quota("d", QuotaPolicy(tpm=1000))
    quota.sent(0.0, tokens=900)
    assert quota.refuses(1.0, lambda: 200) == quota.exhausted(1.0, 200) is True
    assert quota.refuses(1.0, lambda: 50) == quota.exhausted(1.0, 50) is False
    assert not Quota("e").refuses(0.0, lambda: 10**6)


def test_token_estimate_counts_prompt_and_output() -> None:
    """About a token per four characters of messages, plus the output limit."""
    assert estimate_tokens({"messages": "x" * 400, "max_tokens": 50}) == 150


class Limited(ScriptedDeployment):
    """Answers with OpenAI rate-limit headers saying how many requests (and tokens) are left."""

    def __init__(self, name: str, clock: FakeClock, left: int, tokens: int | None = None) -> None:
        super().__init__(name, clock=clock)
        self.left = left
        self.tokens = tokens

    async def complete(self, request: dict[str, Any]) -> Completion:
        info = CURRENT_CALL.get()
        self.left -= 1
        if info is not None:  # what an HTTP adapter notes from the provider's answer
            info.headers = {
                "x-ratelimit-remaining-requests": str(self.left),
                "x-ratelimit-reset-requests": "30s",
            }
            if self.tokens is not None:
                info.headers["x-ratelimit-remaining-tokens"] = str(self.tokens)
                info.headers["x-ratelimit-reset-tokens"] = "30s"
        return await super().complete(request)


async def test_the_router_steers_away_before_the_limit(clock: FakeClock) -> None:
    """A primary down to its last request is passed over for the backup, without a 429."""
    primary = Limited("primary", clock, left=2)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router({"chat": Route([primary, backup])}, clock=clock)
    first = await router.complete("chat", HI)
    second = await router.complete("chat", HI)
    assert (first.deployment, second.deployment) == ("primary", "backup")
    assert second.trace.attempts[0].skipped is Skip.QUOTA
    await clock.advance(31)
    assert (await router.complete("chat", HI)).deployment == "primary"


async def test_a_route_with_every_deployment_spent_still_tries(clock: FakeClock) -> None:
    """When every candidate is near its limit, one is tried anyway rather than failing."""
    only = Limited("only", clock, left=1)
    router = Router({"chat": Route([only])}, clock=clock)
    await router.complete("chat", HI)
    reply = await router.complete("chat", HI)
    assert reply.deployment == "only"


async def test_a_spent_deployment_tried_anyway_is_retried(clock: FakeClock) -> None:
    """The candidate tried although near its limit gets its retries like any other."""
    only = Limited("only", clock, left=1)
    only.script(ok(), fail(500), ok("again"))
    router = Router({"chat": Route([only])}, clock=clock)
    await router.complete("chat", HI)
    async with clock.autojump():
        reply = await router.complete("chat", HI)
    assert reply.text == "again"
    assert reply.trace.attempts[0].skipped is Skip.QUOTA
    assert [a.kind for a in reply.trace.calls] == [Kind.SERVER_ERROR, Kind.OK]


async def test_a_deployment_short_of_the_requests_tokens_is_passed_over(clock: FakeClock) -> None:
    """A primary with 10 tokens left takes no 1000-token request, but still a small one."""
    primary = Limited("primary", clock, left=500, tokens=10)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router({"chat": Route([primary, backup])}, clock=clock)
    big = {**HI, "max_tokens": 1000}
    assert (await router.complete("chat", big)).deployment == "primary"  # no figures yet
    reply = await router.complete("chat", big)
    assert reply.deployment == "backup"
    assert reply.trace.attempts[0].skipped is Skip.QUOTA
    assert (await router.complete("chat", {**HI, "max_tokens": 2})).deployment == "primary"


async def test_a_routers_quotas_are_its_stores(clock: FakeClock) -> None:
    """Two routers on one store count a deployment's rpm together: the store keeps the quota."""
    store = MemoryStore(clock=clock)
    routers = []
    for _ in range(2):
        primary = ScriptedDeployment("primary", clock=clock)
        primary.rpm = 2
        backup = ScriptedDeployment("backup", clock=clock)
        routers.append(Router({"chat": Route([primary, backup])}, store=store, clock=clock))
    replies = [await router.complete("chat", HI) for router in routers * 2]
    assert [r.deployment for r in replies] == ["primary", "primary", "backup", "backup"]
    assert store.quota("primary", QuotaPolicy(rpm=2)).exhausted(clock.now())
