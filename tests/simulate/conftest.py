"""Fixtures of the simulator's tests."""

from __future__ import annotations

import pytest
from sim_helpers import make_scenario

from failover.simulate.record import Recording
from failover.simulate.runner import run_scenario
from failover.simulate.scenario import Scenario


@pytest.fixture
def scenario() -> Scenario:
    """50 req/s for 20 s on primary/backup, the primary hard down from 5 s to 12 s."""
    return make_scenario()


@pytest.fixture
async def recording(scenario: Scenario) -> Recording:
    """`scenario` run in virtual time."""
    return await run_scenario(scenario, fast=True)
