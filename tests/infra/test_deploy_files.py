"""The deployment files are real: infra/compose.yaml hangs together (with `docker compose config` where docker
compose works, else by a structural check), HAProxy accepts infra/haproxy.cfg, every manifest in infra/k8s/
validates against Kubernetes' schemas (kubernetes-validate ships them; nothing is fetched), and the env example
names only settings profilekit has."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from profilekit.settings import Settings

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
K8S_VERSION = "1.30"
PROFILEKIT_SERVICES = ("migrate", "api-1", "api-2", "worker-1", "worker-2")


def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def manifests() -> list[tuple[str, dict]]:
    return [(path.name, doc) for path in sorted((INFRA / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def gpu_ids(service: dict) -> list[str]:
    [device] = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    return device["device_ids"]


def test_compose_services_refer_to_each_other_and_publish_each_port_once():
    services = compose()["services"]
    published: dict[str, str] = {}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for needed in service.get("depends_on", []):
            assert needed in services, f"{name} depends on {needed}, which is no service"
        for port in service.get("ports", []):
            host = str(port).rsplit(":", 1)[0]
            assert host not in published, f"{name} and {published[host]} both publish host port {host}"
            published[host] = name
        command = service.get("command") or []
        if command and command[0].startswith("infra/"):
            assert os.access(REPO / command[0], os.X_OK), f"{name} runs {command[0]}, not an executable script"
    assert published == {"8000": "balancer"}  # clients reach the replicas only through the balancer
    for name in PROFILEKIT_SERVICES:
        assert services[name]["env_file"] == ["profilekit.env"], name
    for name in PROFILEKIT_SERVICES[1:]:  # every process waits for the one-shot migration
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["environment"]["PROFILEKIT_DEVICE"] == "cuda"
    assert services["migrate"]["restart"] == "no" and "db upgrade" in " ".join(services["migrate"]["command"])
    devices = [d for name in PROFILEKIT_SERVICES[1:] for d in gpu_ids(services[name])]
    assert len(devices) == len(set(devices)) == 4  # a GPU of its own for each replica and worker
    for name in ("api-1", "api-2"):
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_the_balancer_sends_to_every_api_replica_and_checks_readiness():
    config = (INFRA / "haproxy.cfg").read_text()
    services = compose()["services"]
    servers = re.findall(r"^\s*server\s+(\S+)\s+(\S+):(\d+)", config, re.M)
    assert {host for _, host, _ in servers} == {n for n in services if n.startswith("api-")}
    assert all(port == "8000" for _, _, port in servers)
    assert "option httpchk GET /readyz" in config and "option redispatch" in config
    assert services["balancer"]["volumes"] == ["./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]
    if not os.access(HAPROXY, os.X_OK):
        pytest.skip("haproxy is not installed: its own check of haproxy.cfg is skipped")
    checked = subprocess.run([HAPROXY, "-c", "-f", str(INFRA / "haproxy.cfg")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_docker_compose_accepts_the_file(tmp_path):
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True) \
        if shutil.which("docker") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("docker compose is not available here; the structural check above stands in for it")
    shutil.copytree(INFRA, tmp_path / "infra")
    shutil.copy(INFRA / "profilekit.env.example", tmp_path / "infra" / "profilekit.env")
    done = subprocess.run(["docker", "compose", "-f", str(tmp_path / "infra" / "compose.yaml"), "config", "-q"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_env_example_sets_only_settings_profilekit_reads():
    names = re.findall(r"^#?\s*(PROFILEKIT_[A-Z_]+)=", (INFRA / "profilekit.env.example").read_text(), re.M)
    known = {f"PROFILEKIT_{field.upper()}" for field in Settings.model_fields}
    assert names and set(names) <= known, set(names) - known
    assert "PROFILEKIT_BOOTSTRAP_ADMIN_KEY" in names
    with pytest.raises(ValueError, match="placeholder"):  # a copy left unedited is refused, not served
        Settings(bootstrap_admin_key="CHANGE_ME_pk_at_least_20_characters")


@pytest.mark.parametrize("name,manifest", manifests(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_every_kubernetes_manifest_validates(name, manifest):
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_refused():
    [deployment] = [doc for name, doc in manifests() if name == "api.yaml" and doc["kind"] == "Deployment"]
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kubernetes_manifests_fit_together():
    docs = [doc for _, doc in manifests()]
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind["Deployment"]
    assert set(deployments) == {"profilekit-api", "profilekit-worker"} and "profilekit-migrate" in by_kind["Job"]
    for workload in [*deployments.values(), *by_kind["Job"].values()]:
        [container] = workload["spec"]["template"]["spec"]["containers"]
        for source in container["envFrom"]:
            kind, ref = next(iter(source.items()))
            assert ref["name"] in by_kind["Secret" if kind == "secretRef" else "ConfigMap"], ref
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):  # no shared disk: pools in the DB
            assert "persistentVolumeClaim" not in volume, volume
    for deployment in deployments.values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert (REPO / container["command"][0]).is_file()
    api = deployments["profilekit-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = by_kind["Service"]["profilekit-api"]
    assert service["spec"]["selector"].items() <= deployments["profilekit-api"]["spec"]["template"]["metadata"][
        "labels"].items()
    hpa = by_kind["HorizontalPodAutoscaler"]["profilekit-api"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "profilekit-api" and hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert by_kind["ConfigMap"]["profilekit"]["data"]["PROFILEKIT_DEVICE"] == "cuda"
    secret_keys = set(by_kind["Secret"]["profilekit"]["stringData"])
    assert {"PROFILEKIT_DATABASE_URL", "PROFILEKIT_BROKER_URL", "PROFILEKIT_BOOTSTRAP_ADMIN_KEY"} <= secret_keys


def test_start_scripts_wait_for_the_database_and_upgrade():
    for script in ("start-api.sh", "start-worker.sh"):
        path = INFRA / script
        assert path.is_file() and os.access(path, os.X_OK)
        text = path.read_text()
        assert "db wait" in text and "db upgrade" in text
