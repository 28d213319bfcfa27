"""The Redis binaries the tests need: a missing one is a failure that says how to install it."""

from __future__ import annotations

from pathlib import Path

import pytest
from state_helpers import require_redis_cli, require_redis_server

from redis_server import Certificates, ClusterRedis, RedisServer, SentinelRedis

MISSING = "/nonexistent/redis-server"


def test_a_missing_binary_fails_the_test_instead_of_skipping() -> None:
    """Without redis-server the Redis fixtures fail with the command that installs it."""
    with pytest.raises(pytest.fail.Exception, match="apt-get install redis-server"):
        require_redis_server(MISSING)


def test_starting_a_missing_binary_says_how_to_install_it() -> None:
    """RedisServer.start names the missing binary and the package to install."""
    server = RedisServer(binary=MISSING)
    try:
        with pytest.raises(RuntimeError, match=f"not found at {MISSING}: apt-get install"):
            server.start()
    finally:
        server.close()


def test_a_missing_redis_cli_fails_the_cluster_tests_instead_of_skipping() -> None:
    """Without redis-cli the cluster fixture fails with the package that provides it."""
    with pytest.raises(pytest.fail.Exception, match="apt-get install redis-tools"):
        require_redis_cli(MISSING)


def test_a_cluster_without_redis_cli_says_how_to_install_it() -> None:
    """ClusterRedis.start names the missing redis-cli and its package before starting anything."""
    cluster = ClusterRedis(cli=MISSING)
    try:
        with pytest.raises(RuntimeError, match=f"redis-cli not found at {MISSING}: apt-get"):
            cluster.start()
        assert not any(node.running for node in cluster.nodes)
    finally:
        cluster.close()


def test_sentinels_are_redis_server_in_sentinel_mode() -> None:
    """The sentinels run the redis-server binary with --sentinel: no redis-sentinel needed."""
    redis = SentinelRedis()
    try:
        command = redis.sentinels[0].command()
        assert command[0] == redis.primary.binary and command[-1] == "--sentinel"
    finally:
        redis.close()


def test_certificates_without_openssl_say_how_to_install_it(tmp_path: Path) -> None:
    """Certificates.make names the missing openssl and its package."""
    with pytest.raises(RuntimeError, match=f"openssl not found at {MISSING}: apt-get install"):
        Certificates.make(tmp_path, openssl=MISSING)
