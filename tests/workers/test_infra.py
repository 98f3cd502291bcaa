"""The deployment shape: the compose file parses and runs the same start scripts the tests run."""

import os
from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_compose_describes_the_services_with_the_tested_start_scripts():
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker"} <= set(services)
    assert services["api"]["command"] == ["infra/start-api.sh"]
    assert services["worker"]["command"] == ["infra/start-worker.sh"]
    assert services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["PROFILEKIT_DATABASE_URL"].startswith("postgresql")
        assert env["PROFILEKIT_BROKER_URL"].startswith("redis://")
    for script in ("start-api.sh", "start-worker.sh"):
        path = INFRA / script
        assert path.is_file() and os.access(path, os.X_OK)
        text = path.read_text()
        assert "db wait" in text and "db upgrade" in text
