"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from failover import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """Virtual time: nothing moves until the test advances it."""
    return FakeClock()
