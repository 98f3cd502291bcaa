"""A cluster on this machine, with real processes (issue #14): PostgreSQL and Redis, two API replicas started
by infra/start-api.sh on their own ports behind a real HAProxy running infra/haproxy.cfg (its servers moved to
those ports), and two workers started by infra/start-worker.sh, each with a data folder of its own.

- a profile onboarded through replica A is trained by one of the workers and predicted through the balancer
  and through replica B, both with its current artifact;
- retrained, both replicas answer with the new artifact on their very next request (no stale cache);
- a warm pool built on one worker is trained on by the other (the builder stopped) and served by both
  replicas: none of them shares a disk with the builder (the pool's bytes are in PostgreSQL);
- replica A killed with SIGKILL under load: requests through the balancer keep being answered, each one 200
  in the end (HAProxy re-dispatches what could not reach A; a client retries what came back 502/503).

Fast by default (`make test`); PROFILEKIT_CLUSTER_FULL=1 (`make cluster`) runs the load longer with more
clients; -s prints the figures."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from profilekit.store import make_engine, make_session_factory, repo
from profilekit.store.migrate import upgrade
from tests.api.conftest import free_port
from tests.workers.conftest import Backend, _postgres_schema, _redis, _required, tiny_backbone_dir  # noqa: F401
from tests.workers.test_worker_process import REPO, environment, start_worker, stop, wait_for

pytestmark = pytest.mark.cluster
HAPROXY = "/usr/sbin/haproxy"
FULL = os.environ.get("PROFILEKIT_CLUSTER_FULL") == "1"
LOAD_SECONDS, CLIENTS = (20.0, 8) if FULL else (3.0, 3)
ADMIN_KEY = "pk_cluster_test_bootstrap_admin_key"


def balancer_config(api_ports: dict[str, int], port: int) -> str:
    """infra/haproxy.cfg with its bind and servers on loopback ports and no Docker DNS."""
    config = (REPO / "infra" / "haproxy.cfg").read_text()
    config = re.sub(r"^resolvers docker\n(?:    .*\n)+\n", "", config, flags=re.M)
    config = config.replace("bind :8000", f"bind 127.0.0.1:{port}").replace(" resolvers docker", "")
    for name, api_port in api_ports.items():
        config, replaced = re.subn(rf"server {name} {name}:8000", f"server {name} 127.0.0.1:{api_port}", config)
        assert replaced == 1, f"infra/haproxy.cfg has no server {name}"
    return config


def start_api(env: dict, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(REPO / "infra" / "start-api.sh")], env=env | {"PROFILEKIT_PORT": str(port),
                            "PROFILEKIT_HOST": "127.0.0.1"}, cwd=REPO, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def both_servers_up(stats_url: str) -> bool:
    """HAProxy's own view (its stats page as CSV): both replicas passed their /readyz checks."""
    try:
        rows = httpx.get(stats_url, timeout=2).text.splitlines()
    except httpx.HTTPError:
        return False
    return sum(1 for row in rows if row.startswith("replicas,api-") and ",UP," in row) == 2


@pytest.fixture
def cluster(tiny_backbone_dir, tmp_path):  # noqa: F811
    if not os.access(HAPROXY, os.X_OK):
        pytest.skip(f"haproxy is not installed at {HAPROXY} (Debian: apt-get install haproxy)")
    database, drop = _postgres_schema(_required("PROFILEKIT_TEST_DATABASE_URL"))
    broker = _redis(_required("PROFILEKIT_TEST_REDIS_URL"))
    upgrade(database)

    def env(name: str) -> dict:
        folder = tmp_path / name  # a data folder of its own for every process
        folder.mkdir()
        return environment(Backend(name, database, broker, folder), tiny_backbone_dir) | {
            "PROFILEKIT_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY, "PROFILEKIT_DRAIN_SECONDS": "1"}

    ports = {"api-1": free_port(), "api-2": free_port()}
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("api-1", "api-2", "worker-1", "worker-2", "haproxy")}
    try:
        for name, port in ports.items():
            processes[name] = start_api(env(name), port, logs[name])
        for name in ("worker-1", "worker-2"):
            processes[name] = start_worker(env(name), logs[name])
        port, stats = free_port(), free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(balancer_config(ports, port) + f"\nfrontend stats\n    bind 127.0.0.1:{stats}\n"
                          "    stats enable\n    stats uri /stats\n")
        processes["haproxy"] = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=logs["haproxy"].open("ab"),
                                                stderr=subprocess.STDOUT, start_new_session=True)
        urls = {name: f"http://127.0.0.1:{p}" for name, p in ports.items()} | {"balancer": f"http://127.0.0.1:{port}"}
        for name in ports:
            wait_for(lambda url=urls[name]: ready(url), 180, f"{name} to be ready", logs[name])
        wait_for(lambda: both_servers_up(f"http://127.0.0.1:{stats}/stats;csv"), 30,
                 "HAProxy to see both replicas up", logs["haproxy"])
        sessions = make_session_factory(make_engine(database))
        yield urls, processes, sessions, logs
    finally:
        for process in processes.values():
            stop(process, signal.SIGKILL)
        drop()


def onboard(api: httpx.Client, external_id: str) -> str:
    profile_id = api.post("/v1/profiles", json={"external_id": external_id}).json()["id"]
    rows = [{"text": f"{word} story {i} by {external_id}", "category": topic}
            for topic, word in (("sports", "match"), ("politics", "senate")) for i in range(6)]
    api.post(f"/v1/profiles/{profile_id}/examples", content="\n".join(json.dumps(r) for r in rows),
             headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
    return profile_id


def worker_of(sessions, job_id: str) -> int:
    """The process id of the worker that ran the job."""
    with sessions() as session:
        pid = int(repo.get_job(session, job_id=job_id).worker.rsplit(":", 1)[1])
    return pid


def train(api: httpx.Client, profile_id: str) -> str:
    job = api.post("/v1/jobs", json={"profile_ids": [profile_id], "method": "head_only", "train": {"epochs": 2}})
    assert job.status_code in (200, 201, 202), job.text
    return job.json()["id"]


def finished(api: httpx.Client, job_id: str):
    job = api.get(f"/v1/jobs/{job_id}").json()
    return job if job["state"] in ("succeeded", "failed", "cancelled") else None


def predict(url: str, profile_id: str, text: str = "the senate passes the budget") -> dict:
    answer = httpx.post(f"{url}/v1/predict", json={"items": [{"profile_id": profile_id, "text": text}]},
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"][0]


class Load:
    """Clients predicting through the balancer on fresh connections; a request answered 502/503 or not at all
    is retried by its client (at most 5 times); every request is recorded with its first and its last answer."""

    def __init__(self, url: str, profile_id: str, clients: int):
        self.url, self.profile_id = url, profile_id
        self.first: Counter = Counter()
        self.last: Counter = Counter()
        self.retries = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(clients)]

    def send(self, body: dict) -> int | str:
        try:
            return httpx.post(f"{self.url}/v1/predict", json=body, timeout=30, headers={
                "Authorization": f"Bearer {ADMIN_KEY}", "Connection": "close"}).status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__

    def client(self, i: int) -> None:
        body = {"items": [{"profile_id": self.profile_id, "text": f"client {i} row {j}: the match"} for j in range(4)]}
        while not self.stop.is_set():
            outcomes = [self.send(body)]
            while outcomes[-1] != 200 and outcomes[-1] not in (400, 401, 404, 409, 422, 500) and len(outcomes) < 6:
                time.sleep(0.2)
                outcomes.append(self.send(body))
            with self.lock:
                self.first[outcomes[0]] += 1
                self.last[outcomes[-1]] += 1
                self.retries += len(outcomes) - 1


def test_a_two_replica_cluster_serves_through_the_balancer_and_survives_a_killed_replica(cluster):
    urls, processes, sessions, logs = cluster
    a = httpx.Client(base_url=urls["api-1"], headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    profile_id = onboard(a, "cluster-reader")

    first_job = train(a, profile_id)
    job = wait_for(lambda: finished(a, first_job), 180, "the first training job", logs["worker-1"])
    assert job["state"] == "succeeded", job
    with sessions() as session:
        trained_by = repo.get_job(session, job_id=first_job).worker
    worker_pids = {processes[name].pid for name in ("worker-1", "worker-2")}
    assert int(trained_by.rsplit(":", 1)[1]) in worker_pids  # one of the two workers, whichever took it
    first_artifact = a.get(f"/v1/profiles/{profile_id}").json()["artifact"]["id"]
    for url in (urls["balancer"], urls["api-2"], urls["api-1"]):  # every replica caches the first artifact
        assert predict(url, profile_id)["artifact_version"] == first_artifact

    second_job = train(httpx.Client(base_url=urls["balancer"], headers=a.headers, timeout=30), profile_id)
    job = wait_for(lambda: finished(a, second_job), 180, "the retraining job", logs["worker-2"])
    assert job["state"] == "succeeded", job
    second_artifact = a.get(f"/v1/profiles/{profile_id}").json()["artifact"]["id"]
    assert second_artifact != first_artifact
    for name in ("api-1", "api-2"):  # the next request of each replica, with the old artifact in its cache
        assert predict(urls[name], profile_id)["artifact_version"] == second_artifact, name

    # a warm pool built by one worker, trained on by the other (the builder stopped), served by both replicas
    writer_id = onboard(a, "cluster-writer")
    build = a.post("/v1/pools", json={"profile_ids": [profile_id, writer_id], "name": "cluster warm",
                                      "set_default": True, "reduction_factor": 4, "train": {"epochs": 1}})
    assert build.status_code == 202, build.text
    built = wait_for(lambda: finished(a, build.json()["id"]), 180, "the warm pool's build", logs["worker-1"])
    assert built["state"] == "succeeded", built
    builder = worker_of(sessions, build.json()["id"])
    [builder_name] = [name for name in ("worker-1", "worker-2") if processes[name].pid == builder]
    [trainer_name] = [name for name in ("worker-1", "worker-2") if name != builder_name]
    stop(processes[builder_name])  # the other worker, whose data folder never held the pool, must train on it
    pool_hash = built["progress"]["pool_hash"]
    with sessions() as session:
        assert repo.get_pool(session, pool_hash=pool_hash).uri == f"db://pools/{pool_hash}"  # no host path
    warm_job = a.post("/v1/jobs", json={"profile_ids": [writer_id], "method": "xpeft_hard",
                                        "hyperparameters": {"k": 2}, "train": {"epochs": 1}}).json()
    assert warm_job["params"]["pool"] == pool_hash, warm_job  # the tenant's default: the warm pool
    job = wait_for(lambda: finished(a, warm_job["id"]), 180, "training on the warm pool", logs[trainer_name])
    assert job["state"] == "succeeded", job
    assert worker_of(sessions, warm_job["id"]) == processes[trainer_name].pid
    warm_artifact = a.get(f"/v1/profiles/{writer_id}").json()["artifact"]
    assert warm_artifact["pool_hash"] == pool_hash
    for name in ("api-1", "api-2"):  # neither replica has the pool's file: both read it from the database
        assert predict(urls[name], writer_id)["artifact_version"] == warm_artifact["id"], name

    load = Load(urls["balancer"], profile_id, CLIENTS)
    for thread in load.threads:
        thread.start()
    time.sleep(LOAD_SECONDS / 3)
    before_kill = sum(load.last.values())
    stop(processes["api-1"], signal.SIGKILL)  # no drain: the port just goes away
    killed_at = time.monotonic()
    time.sleep(LOAD_SECONDS)
    load.stop.set()
    for thread in load.threads:
        thread.join(60)
    after_kill = sum(load.last.values()) - before_kill
    print(f"\ncluster: trained by {trained_by}; warm pool {pool_hash[:8]} built by {builder_name}, trained on by "
          f"{trainer_name}, served by both replicas; artifacts {first_artifact[:8]} → {second_artifact[:8]} on both "
          f"replicas; SIGKILL to api-1 under load by {CLIENTS} clients: {sum(load.last.values())} requests "
          f"({before_kill} before the kill, {after_kill} in the {time.monotonic() - killed_at:.1f} s after), first "
          f"answers {dict(load.first)}, last answers {dict(load.last)}, {load.retries} client retries")
    assert set(load.last) == {200}, load.last  # every request answered 200 in the end
    assert set(load.first) <= {200, 502, 503, "RemoteProtocolError", "ReadError", "ConnectError"}, load.first
    assert after_kill > 0  # the surviving replica kept serving through the balancer
    assert predict(urls["balancer"], profile_id)["artifact_version"] == second_artifact
