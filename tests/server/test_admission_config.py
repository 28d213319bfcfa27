"""The `server.admission` section and client keys with priorities and quotas."""

from __future__ import annotations

import pytest

from failover.config import Config, ServerConfig
from failover.controls import Priority
from failover.errors import ConfigError
from failover.resilience.admission import AdmissionPolicy, Limits
from failover.server.auth import Client, KeyRing

ROUTES = {
    "providers": {"sim": {"kind": "simulated"}},
    "routes": {"chat": {"deployments": [{"provider": "sim", "model": "m"}]}},
}


def test_plain_string_keys_still_work() -> None:
    """A list of strings is a list of keys of normal priority, named by their place."""
    server = ServerConfig.model_validate({"api_keys": ["one", "two"]})
    assert [k.get_secret_value() for k in server.api_keys] == ["one", "two"]
    assert [(k.name, k.priority) for k in server.api_keys] == [
        ("key-1", "normal"),
        ("key-2", "normal"),
    ]


def test_keys_mix_strings_and_mappings() -> None:
    """A key may be a mapping with a name, a priority and quotas, beside plain strings."""
    server = ServerConfig.model_validate(
        {"api_keys": [{"key": "b", "name": "batch", "priority": "low", "max_streams": 5}, "a"]}
    )
    batch, app = server.api_keys
    assert (batch.name, batch.priority, batch.max_streams, batch.limited) == (
        "batch",
        "low",
        5,
        True,
    )
    assert (app.name, app.limited) == ("key-2", False)


def test_an_unset_key_is_left_out() -> None:
    """A key whose ${VAR} was unset (empty) is dropped, as a string or as a mapping."""
    server = ServerConfig.model_validate({"api_keys": ["", {"key": "", "priority": "high"}, "k"]})
    assert [(k.name, k.get_secret_value()) for k in server.api_keys] == [("key-3", "k")]


def test_keys_are_never_shown() -> None:
    """A key's repr and dump hide the secret."""
    server = ServerConfig.model_validate({"api_keys": [{"key": "sk-very-secret", "name": "x"}]})
    assert "sk-very-secret" not in repr(server)
    assert "sk-very-secret" not in str(server.model_dump())


def test_the_defaults_are_the_policy_defaults() -> None:
    """An empty section gives the core's default policy."""
    assert ServerConfig().admission_policy() == AdmissionPolicy()


def test_the_section_builds_its_policy() -> None:
    """Limits, lag, shares, retry-after, route limits and key quotas reach the policy."""
    server = ServerConfig.model_validate(
        {
            "api_keys": [{"key": "b", "name": "batch", "max_requests": 3}, "a"],
            "admission": {
                "max_requests": 50,
                "max_streams": 200,
                "max_lag": "150ms",
                "target_lag": "40ms",
                "shed": {"low": "50%", "normal": "80%"},
                "retry_after": "2s",
                "routes": {"chat": {"max_streams": 20}},
            },
        }
    )
    policy = server.admission_policy()
    assert (policy.max_requests, policy.max_streams, policy.max_lag) == (50, 200, 0.15)
    assert policy.target_lag == 0.04
    assert dict(policy.shed) == {"high": 1.0, "normal": 0.8, "low": 0.5}
    assert policy.retry_after == 2.0
    assert dict(policy.routes) == {"chat": Limits(None, 20)}
    assert dict(policy.keys) == {"batch": Limits(3, None)}


def test_max_lag_null_turns_lag_shedding_off() -> None:
    """`max_lag: null` means the loop lag is never a reason to shed."""
    server = ServerConfig.model_validate({"admission": {"max_lag": None}})
    assert server.admission_policy().max_lag is None


def test_target_lag_null_holds_no_line() -> None:
    """`target_lag: null` means the process never holds a line while saturated."""
    server = ServerConfig.model_validate({"admission": {"target_lag": None}})
    assert server.admission_policy().target_lag is None


@pytest.mark.parametrize(
    ("admission", "path"),
    [
        ({"max_requests": 0}, "server.admission.max_requests"),
        ({"max_lag": "0ms"}, "server.admission.max_lag"),
        ({"target_lag": "0ms"}, "server.admission.target_lag"),
        ({"retry_after": 0}, "server.admission.retry_after"),
        ({"shed": {"low": "0%"}}, "server.admission.shed.low"),
        ({"shed": {"high": "150%"}}, "server.admission.shed.high"),
        ({"shed": {"normal": "60%"}}, "server.admission.shed"),
        ({"routes": {"chat": {"max_requests": 0}}}, "server.admission.routes.chat.max_requests"),
        ({"max_queue": 5}, "server.admission.max_queue"),
        ({"routes": {"other": {"max_requests": 5}}}, "server.admission.routes.other"),
    ],
)
def test_bad_admission_settings_name_their_field(admission: dict[str, object], path: str) -> None:
    """Each bad value is a `ConfigError` naming its field."""
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        Config.from_dict({**ROUTES, "server": {"admission": admission}})


@pytest.mark.parametrize(
    "key",
    [
        {"name": "no-key"},
        {"key": "k", "priority": "urgent"},
        {"key": "k", "max_requests": 0},
        {"key": "k", "role": "admin"},
    ],
)
def test_bad_keys_are_rejected(key: dict[str, object]) -> None:
    """A key mapping without `key`, with an unknown priority, a zero quota or an unknown field."""
    with pytest.raises(ConfigError, match=r"server\.api_keys\[0\]"):
        Config.from_dict({**ROUTES, "server": {"api_keys": [key]}})


def test_key_names_are_unique() -> None:
    """Two keys with one name are an error (quotas and logs go by name)."""
    keys = [{"key": "a", "name": "x"}, {"key": "b", "name": "x"}]
    with pytest.raises(ConfigError, match="two keys are named 'x'"):
        Config.from_dict({**ROUTES, "server": {"api_keys": keys}})


def test_the_key_ring_knows_each_keys_client() -> None:
    """A presented key maps to its client: name, priority, whether it has a quota."""
    server = ServerConfig.model_validate(
        {"api_keys": [{"key": "b", "name": "batch", "priority": "low", "max_streams": 2}, "a"]}
    )
    ring = KeyRing(server.api_keys)
    assert ring.match(b"b") == Client("batch", Priority.LOW, limited=True)
    assert ring.match(b"a") == Client("key-2", Priority.NORMAL)
    assert ring.match(b"c") is None and ring.match(None) is None


@pytest.mark.parametrize(
    ("own", "asked", "granted"),
    [
        (Priority.LOW, None, Priority.LOW),
        (Priority.LOW, Priority.HIGH, Priority.LOW),
        (Priority.NORMAL, Priority.HIGH, Priority.NORMAL),
        (Priority.NORMAL, Priority.LOW, Priority.LOW),
        (Priority.HIGH, Priority.NORMAL, Priority.NORMAL),
        (Priority.HIGH, None, Priority.HIGH),
    ],
)
def test_a_client_may_lower_its_priority_never_raise_it(
    own: Priority, asked: Priority | None, granted: Priority
) -> None:
    """The granted priority is the one asked for, capped at the key's own."""
    assert Client("c", own).grant(asked) is granted
