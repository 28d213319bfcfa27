"""Helpers for the deploy checks: the repository, its tools, and a `failover serve` to probe.

with serving([sys.executable, "-m", "failover.cli"], tmp_path) as url:
    assert status(f"{url}/health/ready") == 200
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from redis_server import free_port

__all__ = ["REPO", "project_version", "serving", "status", "tool"]

REPO = Path(__file__).resolve().parents[2]


def project_version() -> str:
    """The version pyproject.toml gives the package."""
    with (REPO / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
        return version


def tool(name: str) -> str:
    """A command installed by the dev extra (beside this interpreter) or on PATH; else fail."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: `make venv` installs it with the dev extra")
    return found


def status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status `url` answers a GET with."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            code: int = response.status
            return code
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _clean_env() -> dict[str, str]:
    # No provider or gateway keys: `failover serve` then runs on simulated providers and never
    # calls out of this machine.
    return {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_API_KEY") and not key.startswith("FAILOVER_")
    }


@contextlib.contextmanager
def serving(
    failover: Sequence[str], workdir: Path, wait: float = 20.0, *, config: Path | None = None
) -> Iterator[str]:
    """`failover serve` at a free 127.0.0.1 port, on `config` or else on simulated providers;
    its URL once ready."""
    port = free_port()
    options = ["--config", str(config)] if config is not None else []
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*failover, "serve", "--host", "127.0.0.1", "--port", str(port), *options],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=_clean_env(),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, log, wait)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"failover serve exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            if status(f"{url}/health/ready", timeout=1.0) == 200:
                return
        time.sleep(0.05)  # polling a child process for readiness, not timing logic
    pytest.fail(f"failover serve was not ready within {wait}s:\n{log.read_text()}")
