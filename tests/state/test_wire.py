"""Key names on the wire: unchanged on one server, hash-tagged on a Redis Cluster."""

from __future__ import annotations

import random

import pytest
from redis.crc import key_slot

from failover import BreakerPolicy, FakeClock
from failover.quota import QuotaPolicy
from failover.state.counts import SharedQuota
from failover.state.redis import RedisStore
from failover.state.wire import Wire

NAMES = ["openai/gpt-4o", "a{b}c", "}x{", "{}", "odd }{ name", "ünï/cödé"]


def wire(clock: FakeClock, *, hash_tags: bool) -> Wire:
    return Wire(
        "prod", clock=clock, rng=random.Random(1), ttl=60, probe_timeout=5, hash_tags=hash_tags
    )


def test_keys_on_one_server_are_the_plain_names(clock: FakeClock) -> None:
    """Without hash tags a key is namespace:kind:name, as it always was."""
    assert (
        wire(clock, hash_tags=False).key("breaker", "openai/gpt-4o") == "prod:breaker:openai/gpt-4o"
    )


def test_keys_on_a_cluster_wrap_the_name_in_a_hash_tag(clock: FakeClock) -> None:
    """With hash tags the name is wrapped in braces: namespace:kind:{name}."""
    assert (
        wire(clock, hash_tags=True).key("window", "openai/gpt-4o") == "prod:window:{openai/gpt-4o}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_a_breaker_calls_keys_share_one_slot_whatever_the_name(clock: FakeClock, name: str) -> None:
    """The hash and the window one script call touches hash to the same cluster slot."""
    breaker = RedisStore("redis://127.0.0.1:1/0", clock=clock).breaker(name, BreakerPolicy())
    command = wire(clock, hash_tags=True).breaker("read", breaker)
    slots = {key_slot(key.encode()) for key in command.keys}
    assert len(command.keys) == 2 and len(slots) == 1


def test_deployments_spread_over_slots_on_a_cluster(clock: FakeClock) -> None:
    """Different deployments' keys land in different slots (the nodes share the work)."""
    tagged = wire(clock, hash_tags=True)
    slots = {key_slot(tagged.key("breaker", f"p/model-{i}").encode()) for i in range(20)}
    assert len(slots) > 10


def test_a_namespace_with_braces_cannot_break_the_tag(clock: FakeClock) -> None:
    """Braces in the namespace are encoded: the deployment's name stays the hash tag."""
    tagged = Wire(
        "team{a", clock=clock, rng=random.Random(1), ttl=60, probe_timeout=5, hash_tags=True
    )
    hash_key, window = tagged.key("breaker", "p/m"), tagged.key("window", "p/m")
    assert hash_key == "team%7Ba:breaker:{p/m}"
    assert key_slot(hash_key.encode()) == key_slot(window.encode()) == key_slot(b"p/m")


def test_encoded_names_never_collide(clock: FakeClock) -> None:
    """A name that looks encoded and the name it looks like keep keys of their own."""
    tagged = wire(clock, hash_tags=True)
    assert tagged.key("breaker", "a{b") != tagged.key("breaker", "a%7Bb")


@pytest.mark.parametrize("name", NAMES)
def test_a_quotas_two_minutes_share_one_slot_whatever_the_name(clock: FakeClock, name: str) -> None:
    """A quota's call touches this minute's hash and the last one's, in its deployment's slot."""
    quota = RedisStore("redis://127.0.0.1:1/0", clock=clock).quota(name, QuotaPolicy(rpm=1))
    assert isinstance(quota, SharedQuota)
    command = wire(clock, hash_tags=True).quota(quota)
    slots = {key_slot(key.encode()) for key in command.keys}
    assert len(command.keys) == 2 and len(slots) == 1


def test_a_quotas_keys_name_the_wall_clock_minute(clock: FakeClock) -> None:
    """A quota counts into namespace:quota:name:<unix minute>, reading the minute before too."""
    quota = RedisStore("redis://127.0.0.1:1/0", clock=clock).quota("p/m", QuotaPolicy(tpm=5))
    assert isinstance(quota, SharedQuota)
    minute = int(clock.wall() // 60)
    assert wire(clock, hash_tags=False).quota(quota).keys == (
        f"prod:quota:p/m:{minute}",
        f"prod:quota:p/m:{minute - 1}",
    )


def test_a_quota_without_rpm_or_tpm_is_not_shared(clock: FakeClock) -> None:
    """Header figures alone are the provider's count of every replica: nothing to send."""
    quota = RedisStore("redis://127.0.0.1:1/0", clock=clock).quota("p/m", QuotaPolicy())
    assert not isinstance(quota, SharedQuota)
