"""The Dockerfile: hadolint finds nothing, its health check works, it runs as a non-root user.

There is no container engine here: hadolint and the gateway itself are the checks.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from redis_server import free_port

from .dockerfile import Instruction, ignored, instructions, stages
from .tools import REPO, tool

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def _runtime() -> list[Instruction]:
    return stages(DOCKERFILE)[-1]


def _one(keyword: str) -> Instruction:
    found = [ins for ins in _runtime() if ins.keyword == keyword]
    assert len(found) == 1, f"the runtime stage should have one {keyword}"
    return found[0]


def _healthcheck(port: int) -> list[str]:
    """The HEALTHCHECK command, run by this interpreter against `port` instead of 8080."""
    command = _one("HEALTHCHECK").exec_form()
    assert command[0] == "python"
    return [sys.executable, *(arg.replace(":8080/", f":{port}/") for arg in command[1:])]


def test_hadolint_finds_nothing() -> None:
    """hadolint reports no error, warning, info or style issue in the Dockerfile."""
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_healthcheck_passes_on_a_ready_gateway(gateway: str) -> None:
    """The HEALTHCHECK command exits 0 when the gateway answers /health/ready."""
    port = int(gateway.rsplit(":", 1)[1])
    result = subprocess.run(_healthcheck(port), capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_when_nothing_answers() -> None:
    """The HEALTHCHECK command exits non-zero when no gateway listens."""
    result = subprocess.run(_healthcheck(free_port()), capture_output=True, timeout=30, check=False)
    assert result.returncode != 0


def test_healthcheck_asks_the_readiness_endpoint() -> None:
    """The health check asks /health/ready, which turns 503 while the gateway drains."""
    assert "'http://127.0.0.1:8080/health/ready'" in _one("HEALTHCHECK").args


def test_image_runs_as_a_numeric_non_root_user() -> None:
    """The runtime stage switches to a numeric, non-zero user (Kubernetes can verify it)."""
    user = _one("USER").args.split(":")[0]
    assert user.isdigit() and int(user) != 0


def test_image_serves_on_the_port_it_exposes() -> None:
    """CMD binds every interface on the port that EXPOSE and the health check name."""
    assert _one("EXPOSE").args == "8080"
    assert _one("ENTRYPOINT").exec_form() == ["failover"]
    assert _one("CMD").exec_form() == ["serve", "--host", "0.0.0.0", "--port", "8080"]


def test_runtime_is_built_from_a_wheel_in_a_builder_stage() -> None:
    """A builder stage makes the wheel; the runtime copies only what it installed."""
    builder, runtime = stages(DOCKERFILE)
    assert any("pip wheel" in ins.args for ins in builder if ins.keyword == "RUN")
    copies = [ins.args for ins in runtime if ins.keyword == "COPY"]
    assert copies and all(args.startswith("--from=builder ") for args in copies)


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_holds_what_the_builder_copies() -> None:
    """Every file the Dockerfile copies from the context passes .dockerignore."""
    sources = [
        part
        for ins in instructions(DOCKERFILE)
        if ins.keyword == "COPY" and not ins.args.startswith("--from")
        for part in ins.args.split()[:-1]
    ]
    assert sources and all((REPO / source).exists() for source in sources)
    assert [s for s in sources if ignored(_dockerignore(), s.rstrip("/"))] == []


@pytest.mark.parametrize("path", [".git", ".venv", "tests/conftest.py", ".env", "dist/x.whl"])
def test_build_context_leaves_out_local_files(path: str) -> None:
    """.dockerignore keeps the repository's other files out of the build context."""
    assert ignored(_dockerignore(), path)


def test_build_context_leaves_out_bytecode() -> None:
    """Compiled bytecode in the source tree stays out of the build context."""
    assert ignored(_dockerignore(), "src/failover/__pycache__/cli.cpython-312.pyc")
    assert not ignored(_dockerignore(), "src/failover/cli.py")
