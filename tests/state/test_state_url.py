"""The `state` URL: every form a store accepts, and a clear error at `state` for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from failover.cli import main
from failover.config import Config, parse_redis_url
from failover.errors import ConfigError
from failover.state.backend import Backend

GOOD = """\
providers: {p: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: k}}
routes: {chat: {deployments: [{provider: p, model: m}]}}
"""


def state_error(url: str) -> str:
    """The message of the ConfigError that `state: url` raises when the config loads."""
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"state": url})
    return str(info.value)


def test_a_plain_url_keeps_host_port_db_credentials_and_namespace() -> None:
    """redis://user:password@host:port/db?namespace= parses into one server."""
    target = parse_redis_url("redis://me:p%40ss@cache.internal:6380/3?namespace=prod")
    assert (target.mode, target.hosts, target.db) == ("server", (("cache.internal", 6380),), 3)
    assert (target.username, target.password, target.namespace) == ("me", "p@ss", "prod")
    assert not target.tls


def test_a_unix_socket_url_takes_db_and_password_as_options() -> None:
    """unix:///path?db=2&password=x names a socket, a database and a password."""
    target = parse_redis_url("unix:///run/redis/redis.sock?db=2&password=x")
    assert (target.socket, target.db, target.password, target.hosts) == (
        "/run/redis/redis.sock",
        2,
        "x",
        (),
    )


def test_a_sentinel_url_lists_sentinels_then_the_master_and_db() -> None:
    """redis+sentinel:// has sentinels (default port 26379), the master's name and a db."""
    target = parse_redis_url(
        "redis+sentinel://:redis-pw@s1:26380,s2,[::1]:26381/mymaster/1"
        "?sentinel_password=sentinel-pw&sentinel_username=watch&namespace=prod"
    )
    assert target.mode == "sentinel" and target.service == "mymaster" and target.db == 1
    assert target.hosts == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (target.password, target.sentinel_password) == ("redis-pw", "sentinel-pw")
    assert (target.sentinel_username, target.namespace) == ("watch", "prod")


def test_a_cluster_url_lists_its_seed_nodes_and_has_no_db() -> None:
    """redis+cluster:// lists the nodes to start from (default port 6379), database 0."""
    target = parse_redis_url("redis+cluster://u:p@n1:7000,n2/?namespace=x")
    assert (target.mode, target.hosts, target.db) == ("cluster", (("n1", 7000), ("n2", 6379)), 0)
    assert (target.username, target.password) == ("u", "p")


def test_tls_schemes_take_tls_options(tmp_path: Path) -> None:
    """rediss+sentinel:// and rediss+cluster:// speak TLS with ssl_* options, files checked."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here\n")
    for scheme in ("rediss", "rediss+sentinel", "rediss+cluster"):
        path = "/m/0" if "sentinel" in scheme else ""
        target = parse_redis_url(
            f"{scheme}://h:1{path}?ssl_cert_reqs=REQUIRED&ssl_ca_certs={ca}"
            "&ssl_check_hostname=false"
        )
        assert target.tls
        assert target.tls_options == {
            "ssl_cert_reqs": "required",
            "ssl_ca_certs": str(ca),
            "ssl_check_hostname": False,
        }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://h/db", "redis+sentinel://"),
        ("sentinel://h:26379/mymaster", "redis+sentinel://"),
        ("redis+sentinel://h:26379", "names the master after its hosts"),
        ("redis+sentinel://h:26379/m/0/extra", "names the master after its hosts"),
        ("redis+sentinel://h/m?db=1", "db= is not an option of redis+sentinel://"),
        ("redis+cluster://", "lists its hosts"),
        ("redis+cluster://h:7000/2", "Redis Cluster has only database 0"),
        ("redis+cluster://h:7000,,h:7001", "an empty host"),
        ("redis://h1,h2/0", "names one server"),
        ("redis://h:99999/0", "invalid port '99999'"),
        ("redis://h/zero", "database number"),
        ("redis://h/0?namespace=", "namespace= must not be empty"),
        ("redis://h/0?ssl_cert_reqs=none", "ssl_cert_reqs= needs TLS: use a rediss:// URL"),
        ("redis+cluster://h?ssl_ca_certs=/x", "needs TLS: use a rediss+cluster:// URL"),
        ("rediss://h/0?ssl_cert_reqs=maybe", "must be one of none, optional, required"),
        ("rediss://h/0?ssl_ca_certs=/nonexistent/ca.pem", "no such file"),
        ("rediss://h/0?ssl_check_hostname=perhaps", "must be true or false"),
        ("redis://h/0?sentinel_password=x", "for redis+sentinel:// URLs only"),
        ("redis://h/0?socket_timeout=1", "unknown option socket_timeout="),
        ("redis://:a@h/0?password=b", "password is given twice"),
        ("unix://", "the socket's path"),
    ],
)
def test_a_bad_url_is_rejected_at_state_with_what_is_wrong(url: str, message: str) -> None:
    """Each mistake is a ConfigError at `state` that says what is wrong."""
    error = state_error(url)
    assert "state: " in error and message in error


def test_errors_never_repeat_the_password() -> None:
    """A rejected URL's password appears neither in the error nor in a target's repr."""
    assert "hunter2" not in state_error("redis+sentinel://:hunter2@h:26379/m/0?bogus=1")
    target = parse_redis_url("redis+sentinel://:hunter2@h/m?sentinel_password=hunter3")
    assert "hunter2" not in repr(target) and "hunter3" not in repr(target)
    assert target.describe() == "redis+sentinel://h:26379/m/0"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:1/mymaster/0?namespace=x",
        "rediss+cluster://127.0.0.1:1?ssl_cert_reqs=none",
        "redis+cluster://h/bad-db",
        "redis+sentinel://h/m?ssl_cert_reqs=none",
    ],
)
def test_check_and_serve_judge_a_state_url_alike(tmp_path: Path, url: str) -> None:
    """`failover check --no-probe` accepts exactly the URLs a store can be built from."""
    path = tmp_path / "failover.yaml"
    path.write_text(GOOD + f"state: {url}\n")
    result = CliRunner().invoke(main, ["check", "-c", str(path), "--no-probe"])
    try:
        parse_redis_url(url)
    except ValueError as exc:
        assert result.exit_code == 2 and f"state: {exc}" in result.output
    else:
        assert result.exit_code == 0, result.output


def test_backends_are_built_for_each_mode_without_connecting() -> None:
    """A server, Sentinel or Cluster URL gives redis-py's client of that kind, not connected."""
    kinds = {
        "redis://127.0.0.1:1/0": ("server", "Redis"),
        "redis+sentinel://127.0.0.1:1/m/0": ("sentinel", "Redis"),
        "redis+cluster://127.0.0.1:1": ("cluster", "RedisCluster"),
    }
    for url, (mode, client) in kinds.items():
        backend = Backend.build(parse_redis_url(url), connect_timeout=0.1, client_name="t")
        assert (backend.mode, type(backend.client).__name__) == (mode, client)
        assert backend.hash_tags is (mode == "cluster")
