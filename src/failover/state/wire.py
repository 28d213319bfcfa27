"""How a `RedisStore` speaks to Redis: key names, and the script calls that carry an `Outbox`.

    {namespace}:breaker:{deployment}   hash: state, generation, open-until, counters
    {namespace}:window:{deployment}    list: the shared sliding window
    {namespace}:cooldown:{deployment}  string: wall-clock end of a Retry-After cool-down
    {namespace}:health:{deployment}    string "0" while marked unhealthy (absent: healthy)
    {namespace}:budget:{route}         hash: a retry budget's tokens
    {namespace}:quota:{deployment}:{minute}
                                       hash: calls (`r`) and tokens (`t`) every replica sent
                                       in that wall-clock minute (unix time // 60), for rpm/tpm
    {namespace}:lease:{job}            string: the replica holding a periodic job (a probe)
    {namespace}:events                 the pub/sub channel of every change

Every key carries a TTL (`ttl`, the cool-down's own end, two minutes for a quota's minute)
except a breaker drained or disabled by hand, which lasts until it is reset by hand.

On a Redis Cluster (`hash_tags`) the name is a hash tag, `{namespace}:breaker:{{deployment}}`
(`failover:breaker:{openai/gpt-4o}`): Redis hashes only what is between the first `{` and
the next `}`, so a breaker's hash and its window, which one script call touches together,
share a slot (so do a quota's two minutes), while different deployments spread over the
nodes. Braces (and `%`) inside the namespace and the name are percent-encoded there, so the
first brace is always the tag's and the tag is never empty, whatever a deployment is called.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..clock import Clock
from ..resilience.breaker import BreakerState, Result
from ._lua import SHA
from .counts import SharedBudget, SharedQuota
from .outbox import Outbox, Outcome
from .shared import SharedBreaker
from .snapshot import SetMode

__all__ = ["Command", "Wire", "parse_quota"]

_PROBE_RESULTS = {Result.SUCCESS: "s", Result.FAILURE: "f", Result.IGNORE: "i"}
_REASONS = {"forced_open": "forced open", "disabled": "disabled", "closed": "reset"}
_QUOTA_TTL_MS = "120000"  # a minute's count is read until the end of the next minute


@dataclass(frozen=True, slots=True)
class Command:
    """One Redis command of a pipeline, and what its reply updates."""

    kind: str
    target: SharedBreaker | SharedBudget | SharedQuota | str
    keys: tuple[str, ...]
    argv: tuple[str, ...]
    raw: str | None = None  # a plain command instead of the script

    def args(self) -> tuple[str | int, ...]:
        """The command as a pipeline sends it."""
        if self.raw is not None:
            return (self.raw, *self.keys, *self.argv)
        return ("EVALSHA", SHA, len(self.keys), *self.keys, *self.argv)


class Wire:
    """Builds the commands of one namespace; times are the clock's wall time."""

    def __init__(
        self,
        namespace: str,
        *,
        clock: Clock,
        rng: random.Random,
        ttl: float,
        probe_timeout: float,
        hash_tags: bool = False,
    ) -> None:
        self.namespace = namespace
        self.channel = f"{namespace}:events"
        self.hash_tags = hash_tags
        self._prefix = _brace_free(namespace) if hash_tags else namespace
        self._clock = clock
        self._rng = rng
        self._ttl_ms = str(round(ttl * 1000))
        self._ttl = ttl
        self._probe_timeout = repr(probe_timeout)

    def key(self, kind: str, name: str) -> str:
        """The Redis key of `name`'s `kind` of state in this namespace."""
        if self.hash_tags:
            return f"{self._prefix}:{kind}:{{{_brace_free(name)}}}"
        return f"{self._prefix}:{kind}:{name}"

    def commands(self, box: Outbox, *, health_reads: frozenset[str] = frozenset()) -> list[Command]:
        """Pushes first (what was decided), then outcomes, probes and reads, in one batch."""
        out = [self.set_command(breaker, mode) for breaker, mode in box.sets.items()]
        for breaker, outcomes in box.outcomes.items():
            out.extend(self.record_commands(breaker, outcomes))
        for breaker, probes in box.probes.items():
            for gen, result in probes:
                out.append(self.breaker("probe", breaker, str(gen), _PROBE_RESULTS[result]))
        out.extend(self.breaker("read", breaker) for breaker in box.reads)
        out.extend(self.cooldown(key, until) for key, until in box.cooldowns.items())
        out.extend(self.health(key, healthy) for key, healthy in box.health.items())
        out.extend(self.budget(budget) for budget in box.budgets)
        out.extend(self.quota(quota) for quota in box.quotas)
        out.extend(
            Command("health?", key, (self.key("health", key),), (), raw="GET")
            for key in health_reads
        )
        return out

    def breaker(self, op: str, breaker: SharedBreaker, *extra: str) -> Command:
        """A script call `op` on `breaker`: its keys, the clock, its policy, then `extra`."""
        name, policy = breaker.name, breaker.policy
        ttl = max(self._ttl, policy.max_open_for * (1 + policy.jitter) + 60)  # outlives OPEN
        args = (op, self.channel, name, repr(self._clock.wall()), str(round(ttl * 1000)),
                *breaker.policy_args, repr(self._rng.random()), self._probe_timeout,
                *extra)  # fmt: skip
        return Command(op, breaker, (self.key("breaker", name), self.key("window", name)), args)

    def record_commands(self, breaker: SharedBreaker, outcomes: list[Outcome]) -> list[Command]:
        """One `record` call per run of outcomes taken under the same generation."""
        commands: list[Command] = []
        run: list[str] = []
        gen = outcomes[0][0]
        for outcome_gen, code in outcomes:
            if outcome_gen != gen:
                commands.append(self.breaker("record", breaker, str(gen), "".join(run)))
                run, gen = [], outcome_gen
            run.append(code)
        commands.append(self.breaker("record", breaker, str(gen), "".join(run)))
        return commands

    def set_command(self, breaker: SharedBreaker, mode: SetMode) -> Command:
        """Push the mirror's current state, merged as `mode` says (see the script)."""
        state = breaker.state
        until = repr(breaker.shared_until()) if state is BreakerState.OPEN else ""
        reopens = str(breaker.reopens)
        if mode is SetMode.EARLY:
            reopens, reason = "", "health probe passed"
        elif mode is SetMode.FORCE:
            reason = _REASONS.get(state.value, state.value)
        else:
            reason = f"{state.value} while redis was unreachable"
        return self.breaker("set", breaker, mode.wire, state.value, until, reopens, reason, "")

    def cooldown(self, key: str, until: float) -> Command:
        """Extend `key`'s cool-down to the wall time `until` (a later end wins)."""
        args = ("cooldown", self.channel, key, repr(self._clock.wall()), repr(until))
        return Command("cooldown", key, (self.key("cooldown", key),), args)

    def health(self, key: str, healthy: bool) -> Command:
        """Mark `key` healthy or unhealthy for every replica."""
        args = ("health", self.channel, key, "1" if healthy else "0", self._ttl_ms)
        return Command("health", key, (self.key("health", key),), args)

    def budget(self, budget: SharedBudget) -> Command:
        """Settle `budget`'s deposits and spends since the last call with the shared bucket."""
        deposits, spends = budget.take_delta()
        args = ("budget", repr(self._clock.wall()), repr(budget.min_per_second),
                repr(budget.burst), repr(deposits), repr(spends), self._ttl_ms)  # fmt: skip
        return Command("budget", budget, (self.key("budget", budget.name),), args)

    def quota(self, quota: SharedQuota) -> Command:
        """Add `quota`'s calls since the last call to this minute's count (none: just read), and
        read back this minute's and the last one's."""
        requests, tokens = quota.take_delta()
        minute = int(self._clock.wall() // 60)
        key = self.key("quota", quota.name)
        args = ("quota", str(minute), str(requests), str(tokens), _QUOTA_TTL_MS)
        return Command("quota", quota, (f"{key}:{minute}", f"{key}:{minute - 1}"), args)

    def lease(self, job: str, holder: str, ttl: float) -> Command:
        """Take or renew the lease on `job` for `holder` (SET NX PX)."""
        args = ("lease", holder, str(max(1, round(ttl * 1000))))
        return Command("lease", job, (self.key("lease", job),), args)


def parse_quota(
    reply: Sequence[str | bytes],
) -> tuple[int, tuple[float, float], tuple[float, float]]:
    """A `quota` call's reply: (minute, (requests, tokens) the minute before, ... in it)."""
    minute, prev_requests, prev_tokens, requests, tokens = reply
    return int(minute), (float(prev_requests), float(prev_tokens)), (float(requests), float(tokens))


def _brace_free(text: str) -> str:
    """`text` without `{` or `}` (percent-encoded, reversibly), to sit inside a hash tag."""
    if "{" not in text and "}" not in text and "%" not in text:
        return text  # the common case, as is
    return text.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
