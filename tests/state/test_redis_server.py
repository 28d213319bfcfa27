"""The redis-server the tests need: a missing one is a failure that says how to install it."""

from __future__ import annotations

import pytest
from state_helpers import require_redis_server

from redis_server import RedisServer

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
