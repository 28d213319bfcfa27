"""The Kubernetes manifests, as `kubectl kustomize` renders them, against the 1.30 schemas and
against what the gateway really serves."""

from __future__ import annotations

import functools
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .kustomize import KUBERNETES, SECRET_EXAMPLE, Render, render
from .tools import project_version, status

KUBERNETES_VERSION = "1.30.0"
VARIANTS = {
    "base": KUBERNETES / "base",
    **{f"overlays/{d.name}": d for d in sorted((KUBERNETES / "overlays").iterdir())},
}


@functools.cache
def _render(variant: str) -> Render:
    return render(VARIANTS[variant])


@pytest.fixture(params=sorted(VARIANTS))
def rendered(request: pytest.FixtureRequest) -> Render:
    """What one kustomization (the base, then each overlay) renders."""
    return _render(request.param)


def _secret() -> dict[str, Any]:
    with SECRET_EXAMPLE.open(encoding="utf-8") as file:
        secret: dict[str, Any] = yaml.safe_load(file)
        return secret


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return [f"{obj['kind']} {obj['metadata']['name']} at {where}: {exc.message}"]
    return []


def _pod(rendered: Render) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("Deployment", "failover")["spec"]["template"]
    return spec


def test_kustomization_renders_without_a_warning(rendered: Render) -> None:
    """kubectl kustomize renders the objects and prints nothing on stderr."""
    assert rendered.objects
    assert rendered.stderr == ""


def test_every_object_matches_the_kubernetes_schema(rendered: Render) -> None:
    """Every rendered object validates against the Kubernetes 1.30 schema, unknown fields too."""
    assert [error for obj in rendered.objects for error in _schema_errors(obj)] == []


def test_secret_example_matches_the_kubernetes_schema() -> None:
    """secret.example.yaml is a valid Secret."""
    assert _schema_errors(_secret()) == []


def test_no_secret_is_rendered(rendered: Render) -> None:
    """The manifests reference the keys' Secret but never carry one."""
    assert [obj for obj in rendered.objects if obj["kind"] == "Secret"] == []


def test_secret_example_has_every_key_the_gateway_reads(rendered: Render) -> None:
    """Each secretKeyRef names the example Secret and a key it has."""
    secret = _secret()
    refs = [
        var["valueFrom"]["secretKeyRef"]
        for var in rendered.gateway()["env"]
        if "secretKeyRef" in var.get("valueFrom", {})
    ]
    assert refs
    assert {ref["name"] for ref in refs} == {secret["metadata"]["name"]}
    assert {ref["key"] for ref in refs} <= set(secret["stringData"])


def test_config_loads_as_the_pod_would_load_it(rendered: Render) -> None:
    """The mounted failover.yaml, with the pod's environment, is a valid config with keys."""
    config = rendered.config(_secret()["stringData"])
    assert config.routes
    assert config.server.api_keys and config.server.admin_key is not None


def test_probes_ask_paths_the_gateway_answers(rendered: Render, gateway: str) -> None:
    """The readiness and liveness probe paths answer 200 on a running gateway."""
    container = rendered.gateway()
    paths = [container[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")]
    assert paths == ["/health/ready", "/health/live"]
    assert [status(gateway + path) for path in paths] == [200, 200]


def test_prometheus_scrapes_the_metrics_endpoint(rendered: Render, gateway: str) -> None:
    """The scrape annotations name the gateway's port and a path that serves metrics."""
    notes = _pod(rendered)["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert notes["prometheus.io/port"] == str(_serving_port(rendered))
    assert status(gateway + notes["prometheus.io/path"]) == 200


def _serving_port(rendered: Render) -> int:
    args = rendered.gateway()["args"]
    return int(args[args.index("--port") + 1])


def test_probes_and_service_use_the_port_the_gateway_binds(rendered: Render) -> None:
    """The container port named http is the --port the gateway is started with."""
    container = rendered.gateway()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["http"] == _serving_port(rendered)
    assert {container[p]["httpGet"]["port"] for p in ("readinessProbe", "livenessProbe")} == {
        "http"
    }
    assert rendered.one("Service", "failover")["spec"]["ports"][0]["targetPort"] == "http"


def test_grace_period_outlasts_prestop_and_drain(rendered: Render) -> None:
    """terminationGracePeriodSeconds exceeds the preStop sleep plus server.grace plus 1 s."""
    pod = _pod(rendered)["spec"]
    sleep = rendered.gateway()["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and int(sleep[1]) > 0
    grace = rendered.config(_secret()["stringData"]).server.grace
    # uvicorn's own shutdown timeout is server.grace + 1 (failover serve)
    assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + grace + 1


def test_gateway_runs_as_non_root_on_a_read_only_root(rendered: Render) -> None:
    """The pod runs as a non-root user, without privilege escalation, on a read-only root."""
    pod = _pod(rendered)["spec"]
    container = rendered.gateway()["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]


def test_image_is_tagged_with_the_project_version(rendered: Render) -> None:
    """The gateway's image carries an explicit tag: the version this repository builds."""
    image = rendered.gateway()["image"]
    assert image.rsplit(":", 1)[-1] == project_version()


def test_resources_are_requested_and_limited(rendered: Render) -> None:
    """The gateway requests CPU (the autoscaler's base) and memory, and caps memory."""
    resources = rendered.gateway()["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_selectors_match_the_gateway_pods(rendered: Render) -> None:
    """The Service, the PodDisruptionBudget and the Deployment select the gateway's pods."""
    labels = _pod(rendered)["metadata"]["labels"]
    selectors = [
        rendered.one("Service", "failover")["spec"]["selector"],
        rendered.one("PodDisruptionBudget", "failover")["spec"]["selector"]["matchLabels"],
        rendered.one("Deployment", "failover")["spec"]["selector"]["matchLabels"],
    ]
    assert all(selector.items() <= labels.items() for selector in selectors)


def test_autoscaler_scales_the_gateway_from_its_replica_count(rendered: Render) -> None:
    """The HorizontalPodAutoscaler targets the Deployment, on CPU, from 2 replicas up."""
    hpa = rendered.one("HorizontalPodAutoscaler", "failover")["spec"]
    deployment = rendered.one("Deployment", "failover")
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "failover",
    }
    assert hpa["minReplicas"] == deployment["spec"]["replicas"] == 2
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]


def test_base_keeps_state_in_memory() -> None:
    """Without the Redis overlay each replica keeps its own state."""
    assert _render("base").config(_secret()["stringData"]).state == "memory"


def test_redis_overlay_points_state_at_its_redis() -> None:
    """With the Redis overlay the gateways share state in the Redis it deploys."""
    rendered = _render("overlays/with-redis")
    state = rendered.config(_secret()["stringData"]).state
    assert state == "redis://failover-redis:6379/0"
    service = rendered.one("Service", "failover-redis")["spec"]
    pods = rendered.one("Deployment", "failover-redis")["spec"]["template"]["metadata"]
    assert service["ports"][0]["port"] == 6379
    assert service["selector"].items() <= pods["labels"].items()


def test_redis_runs_as_non_root_on_a_read_only_root() -> None:
    """The overlay's Redis runs as a non-root user on a read-only root filesystem."""
    pod = _render("overlays/with-redis").one("Deployment", "failover-redis")["spec"]["template"]
    container = pod["spec"]["containers"][0]["securityContext"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["readOnlyRootFilesystem"] is True


def test_overlays_are_discovered() -> None:
    """The Redis overlay is among the kustomizations these checks render."""
    assert "overlays/with-redis" in VARIANTS
    assert all((d / "kustomization.yaml").is_file() for d in VARIANTS.values())
