"""Fixtures for the deploy checks."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from .tools import serving


@pytest.fixture(scope="package")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `failover serve` from this checkout on simulated providers; its URL."""
    with serving([sys.executable, "-m", "failover.cli"], tmp_path_factory.mktemp("gw")) as url:
        yield url
