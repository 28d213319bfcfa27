"""Rendering deploy/kubernetes with `kubectl kustomize` and reading what it renders."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.config import Config

from .tools import REPO

__all__ = ["KUBERNETES", "SECRET_EXAMPLE", "Render", "kubectl", "render"]

KUBERNETES = REPO / "deploy" / "kubernetes"
SECRET_EXAMPLE = KUBERNETES / "secret.example.yaml"

Object = dict[str, Any]


def kubectl() -> str:
    """The kubectl on PATH; a missing one fails the test (.ci/run installs it)."""
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is not installed: the Kubernetes manifests are checked by rendering them "
            "with `kubectl kustomize`. `.ci/run` installs it (Debian: kubernetes-client)."
        )
    return found


@dataclass(frozen=True)
class Render:
    """The objects one kustomization renders, and what kubectl printed on stderr."""

    objects: list[Object]
    stderr: str

    def one(self, kind: str, name: str) -> Object:
        """The object of `kind` named `name` (a generated name with its hash suffix)."""
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
        return found[0]

    def gateway(self) -> Object:
        """The gateway's container."""
        pod = self.one("Deployment", "failover")["spec"]["template"]["spec"]
        containers: list[Object] = pod["containers"]
        return next(c for c in containers if c["name"] == "gateway")

    def environment(self, secret: Mapping[str, str]) -> dict[str, str]:
        """The gateway's environment, with Secret keys taken from `secret`."""
        container = self.gateway()
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            name = source["configMapRef"]["name"]
            env.update(self.one("ConfigMap", name)["data"])
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            elif key := var["valueFrom"].get("secretKeyRef", {}).get("key"):
                env[var["name"]] = secret[key]
        return env

    def config(self, secret: Mapping[str, str]) -> Config:
        """The gateway's config as it would load in the pod: the mounted file, its env."""
        volumes = self.one("Deployment", "failover")["spec"]["template"]["spec"]["volumes"]
        mapped = next(v["configMap"]["name"] for v in volumes if "configMap" in v)
        text = self.one("ConfigMap", mapped)["data"]["failover.yaml"]
        return Config.from_yaml(text, env=self.environment(secret))


def render(directory: Path) -> Render:
    """`kubectl kustomize directory`; a failure fails the test with kubectl's message."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        version = subprocess.run(
            [kubectl(), "version", "--client"], capture_output=True, text=True, check=False
        )
        pytest.fail(
            f"kubectl kustomize {directory} failed:\n{result.stderr}\n"
            f"({version.stdout.strip()}; the manifests need kustomize >= 4, kubectl >= 1.21)"
        )
    objects = [obj for obj in yaml.safe_load_all(result.stdout) if obj]
    return Render(objects, result.stderr)
