"""The API served by a real uvicorn on a loopback port, on the embedded default and (in CI) on
PostgreSQL + Redis. Training jobs the API queues are run by calling the worker's task body."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.workers.conftest import backend, settings, tiny_backbone_dir  # noqa: F401  (fixtures)


@dataclass
class Server:
    url: str
    runtime: object
    admin: str
    client: str
    other_client: str
    worker_cache: object = None

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def trained_profile(self, external_id: str, method: str = "head_only",
                        hyperparameters: dict | None = None) -> tuple[str, str]:
        """A profile of the client's tenant with ten examples in two categories, trained for one epoch
        by a worker's task body; returns (profile id, job id)."""
        api = self.http(self.client)
        profile = api.post("/v1/profiles", json={"external_id": external_id}).json()["id"]
        rows = [{"text": f"{word} story {i}", "category": topic}
                for topic, word in (("sports", "match"), ("politics", "senate")) for i in range(5)]
        api.post(f"/v1/profiles/{profile}/examples", content="\n".join(json.dumps(r) for r in rows),
                 headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
        job = api.post("/v1/jobs", json={"profile_ids": [profile], "method": method, "train": {"epochs": 1},
                                        **({"hyperparameters": hyperparameters} if hyperparameters else {})})
        assert job.status_code < 300, job.text
        assert self.run_queued_jobs() == ["succeeded"]
        return profile, job.json()["id"]

    def run_queued_jobs(self) -> list[str]:
        """What a worker process (with its own backbone and pools) would do with the queued jobs."""
        from profilekit.runner import run_job
        from profilekit.serving import EngineCache
        from profilekit.store import repo

        if self.worker_cache is None:
            self.worker_cache = EngineCache(self.runtime.settings)
        with self.runtime.sessions() as session:
            queued = [j.id for j in repo.list_jobs(session, state="queued")]
        return [run_job(job_id, sessions=self.runtime.sessions, cache=self.worker_cache) for job_id in queued]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(settings):  # noqa: F811
    from profilekit.api.auth import create_key
    from profilekit.api.runtime import Runtime
    from profilekit.store.migrate import upgrade

    settings = settings.model_copy(update={"default_pool_size": 12, "max_upload_bytes": 200_000, "secret_key": "t"})
    upgrade(settings.resolved_database_url)
    runtime = Runtime(settings)
    with runtime.sessions() as session:
        admin = create_key(session, role="admin")
        client = create_key(session, tenant="acme", role="client")
        other = create_key(session, tenant="globex", role="client")
    yield from serve(runtime, admin, client, other)


def serve(runtime, admin: str, client: str, other: str):
    """A real uvicorn serving the app of `runtime` on a free port until the generator is closed."""
    import uvicorn

    from profilekit.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime.settings, runtime=runtime), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", runtime, admin, client, other)
    server.should_exit = True
    thread.join(10)
    runtime.close()


@pytest.fixture
def cli(server, monkeypatch):
    """profilekit's command line on the served instance's store: `cli(["keys", "list"])` → exit code."""
    from profilekit.cli import main
    from profilekit.settings import get_settings

    monkeypatch.setenv("PROFILEKIT_DATABASE_URL", server.runtime.settings.resolved_database_url)
    monkeypatch.setenv("PROFILEKIT_BROKER_URL", server.runtime.settings.resolved_broker_url)
    get_settings.cache_clear()
    yield main
    get_settings.cache_clear()
