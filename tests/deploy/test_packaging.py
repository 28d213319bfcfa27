"""The wheel and sdist: built by `python -m build` with no warning, installed into a fresh venv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from .tools import REPO, project_version, serving, status

VERSION = project_version()
DASHBOARD = REPO / "src" / "failover" / "server" / "dashboard"


@dataclass(frozen=True)
class Dist:
    """What one `python -m build` run produced and printed."""

    wheel: Path
    sdist: Path
    output: str


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The sdist, and the wheel built from it, with warnings as errors in the build frontend."""
    out = tmp_path_factory.mktemp("dist")
    # Without PYTHONDONTWRITEBYTECODE setuptools would print "byte-compiling is disabled"
    # warnings that say nothing about the package.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return Dist(
        wheel=out / f"failover-{VERSION}-py3-none-any.whl",
        sdist=out / f"failover-{VERSION}.tar.gz",
        output=output,
    )


@pytest.fixture(scope="module")
def venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its dependencies installed; its bin directory."""
    home = tmp_path_factory.mktemp("venv")
    # This interpreter's pip installs into the new venv (`--python`): seeding the venv with a
    # pip of its own and byte-compiling would double the time and prove nothing more.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    bin_dir = home / "bin"
    install = ["install", "--quiet", "--no-compile", str(dist.wheel)]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), *install],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return bin_dir


def _wheel_names(dist: Dist) -> list[str]:
    with zipfile.ZipFile(dist.wheel) as wheel:
        return wheel.namelist()


def _sdist_names(dist: Dist) -> list[str]:
    with tarfile.open(dist.sdist) as sdist:
        return [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]


def test_build_prints_no_warning(dist: Dist) -> None:
    """Building the sdist and the wheel prints no warning or deprecation notice."""
    noisy = [line for line in dist.output.splitlines() if re.search(r"warn|deprecat", line, re.I)]
    assert noisy == []


def test_wheel_carries_the_package_data(dist: Dist) -> None:
    """The wheel holds py.typed, every dashboard file and the license text."""
    names = set(_wheel_names(dist))
    dashboard = {
        f"failover/server/dashboard/{path.name}"
        for path in DASHBOARD.iterdir()
        if path.is_file() and path.suffix != ".py"
    }
    assert dashboard and dashboard <= names
    assert "failover/py.typed" in names
    assert f"failover-{VERSION}.dist-info/licenses/LICENSE" in names


def test_wheel_holds_only_the_package(dist: Dist) -> None:
    """Nothing but the failover package and its metadata is in the wheel: no tests."""
    tops = {name.split("/", 1)[0] for name in _wheel_names(dist)}
    assert tops == {"failover", f"failover-{VERSION}.dist-info"}


def test_wheel_metadata_names_the_license_by_spdx(dist: Dist) -> None:
    """The metadata gives the license as an SPDX expression and points at the license file."""
    with zipfile.ZipFile(dist.wheel) as wheel:
        metadata = wheel.read(f"failover-{VERSION}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()


def test_sdist_carries_sources_and_license_but_no_tests(dist: Dist) -> None:
    """The sdist holds the source, the dashboard and LICENSE, and no tests/ directory."""
    names = set(_sdist_names(dist))
    assert {"LICENSE", "pyproject.toml", "src/failover/server/dashboard/index.html"} <= names
    assert not any(name.startswith("tests") for name in names)


def test_installed_command_answers_help(venv: Path) -> None:
    """`failover --help` from the installed wheel lists the serve command."""
    result = subprocess.run(
        [str(venv / "failover"), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+serve\s", result.stdout, re.M)


def test_installed_command_reports_its_version(venv: Path) -> None:
    """`failover --version` from the installed wheel reports the project's version."""
    result = subprocess.run(
        [str(venv / "failover"), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert VERSION in result.stdout


def test_installed_gateway_serves_its_dashboard(venv: Path, tmp_path: Path) -> None:
    """The installed gateway answers /dashboard/ from the files packaged in the wheel."""
    with serving([str(venv / "failover")], tmp_path) as url:
        assert status(f"{url}/dashboard/") == 200
        assert status(f"{url}/dashboard/dashboard.js") == 200
