"""Fixtures for the observability tests."""

from __future__ import annotations

import pytest
from obs_helpers import two_routes

from failover import FakeClock, Router


@pytest.fixture
def router(clock: FakeClock) -> Router:
    """Route "smart" (primary, backup) falling back to "fast" (local); everything answers."""
    return two_routes(clock)
