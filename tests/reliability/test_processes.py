"""Processes stop cleanly (issue #13, items 14 and 15), with real processes:

- SIGTERM to the API under load: /readyz turns 503 at once, requests keep being served through the drain,
  requests in flight (a slow upload) finish, a stuck request cannot hold the process past the shutdown
  timeout, no answer is a 5xx or missing, and the process exits 0.
- SIGTERM to a worker mid-job: the job goes back to the queue (never left 'running'), the attempt is not
  counted, and the next worker trains it to one current artifact.
- `profilekit serve` (what `make run` runs): SIGKILL takes its worker child with it; Ctrl-C exits 0 and
  hands the running job back.

Fast by default (`make test`); PROFILEKIT_RELIABILITY_FULL=1 (`make reliability`) runs the load longer
and with more clients."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from profilekit.api.auth import create_key
from profilekit.jobs import create_training_jobs, enqueue, make_celery
from profilekit.settings import Settings
from profilekit.store import Artifact, Example, make_engine, make_session_factory, repo
from profilekit.store.migrate import upgrade
from tests.api.conftest import free_port
from tests.workers.conftest import backend, sessions, settings, tiny_backbone_dir  # noqa: F401  (fixtures)
from tests.workers.test_runner import add_profile
from tests.workers.test_worker_process import BIN, REPO, environment, start_worker, stop, wait_for

pytestmark = pytest.mark.reliability
FULL = os.environ.get("PROFILEKIT_RELIABILITY_FULL") == "1"
LOAD_SECONDS, CLIENTS = (30.0, 16) if FULL else (2.0, 4)
DRAIN, TIMEOUT = 1.5, 4.0  # the API's drain and shutdown timeout in these scenarios


def serve(env: dict, port: int, log, *more: str) -> subprocess.Popen:
    """`profilekit serve` in a session of its own, as `make run` starts it in a terminal."""
    return subprocess.Popen([str(BIN / "profilekit"), "serve", "--host", "127.0.0.1", "--port", str(port), *more],
                            env=env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def long_job(store, name: str) -> str:
    """A job that trains through the encoder for minutes unless stopped: 210 one-row steps an epoch at lr 1e-6,
    so that even an early stop comes after 100 epochs, plenty of steps to stop it in the middle of."""
    with store() as session:
        profile = add_profile(session, name, n_per_label=150)
        [job] = create_training_jobs(session, profile_ids=[profile.id], method="xpeft_soft", pool="random-12",
                                     train={"epochs": 500, "patience": 100, "batch_size": 1},
                                     method_config={"lr": 1e-6})
        session.commit()
        return job.id


def job_state(store, job_id: str):
    with store() as session:
        return repo.get_job(session, job_id=job_id)


def training(store, job_id: str):
    job = job_state(store, job_id)
    return job if job.state == "running" and job.progress.get("step", 0) > 0 else None


def finished(store, job_id: str):
    job = job_state(store, job_id)
    return job if job.state in ("succeeded", "failed", "cancelled") else None


class Load:
    """Clients sending predictions, each on a fresh connection, until the balancer (a thread polling
    /readyz) sees the API not ready; every request sent is recorded with its answer or error."""

    def __init__(self, url: str, key: str, clients: int):
        self.url, self.key = url, key
        self.outcomes: Counter = Counter()
        self.latencies: list[float] = []
        self.not_ready_at: float | None = None
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(clients)]
        self.threads.append(threading.Thread(target=self.balancer))

    def client(self, i: int) -> None:
        body = {"items": [{"text": f"client {i} row {j}: the senate passes the budget"} for j in range(4)]}
        headers = {"Authorization": f"Bearer {self.key}", "Connection": "close"}
        while not self.stop.is_set() and self.not_ready_at is None:
            began = time.monotonic()
            try:
                outcome = httpx.post(f"{self.url}/v1/predict", json=body, headers=headers, timeout=30).status_code
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            with self.lock:
                self.outcomes[outcome] += 1
                if outcome == 200:
                    self.latencies.append(time.monotonic() - began)

    def balancer(self) -> None:
        while not self.stop.is_set():
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 503:
                    self.not_ready_at = time.monotonic()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def trickle(url: str, key: str, profile_id: str, rows: list[dict], seconds: float, result: dict) -> None:
    """An upload whose body arrives slowly: in flight when the API is told to stop."""
    def body():
        for row in rows:
            yield (json.dumps(row) + "\n").encode()
            time.sleep(seconds / len(rows))

    try:
        answer = httpx.post(f"{url}/v1/profiles/{profile_id}/examples", content=body(), timeout=60,
                            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"})
        result["status"] = answer.status_code
    except httpx.HTTPError as exc:
        result["status"] = type(exc).__name__


def test_sigterm_drains_the_api_under_load(backend, tiny_backbone_dir, tmp_path):  # noqa: F811
    env = environment(backend, tiny_backbone_dir) | {"PROFILEKIT_DRAIN_SECONDS": str(DRAIN),
                                                      "PROFILEKIT_SHUTDOWN_TIMEOUT_SECONDS": str(TIMEOUT)}
    upgrade(backend.database_url)
    store = make_session_factory(make_engine(backend.database_url))
    with store() as session:
        key = create_key(session, role="admin")
    port, log = free_port(), tmp_path / "api.log"
    url = f"http://127.0.0.1:{port}"
    api = serve(env, port, log, "--no-worker")
    try:
        wait_for(lambda: ready(url), 120, "the API to be ready", log)
        auth = {"Authorization": f"Bearer {key}"}
        profile_id = httpx.post(f"{url}/v1/profiles", json={"external_id": "slow-upload"}, headers=auth).json()["id"]
        load = Load(url, key, CLIENTS)
        for thread in load.threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        upload: dict = {}
        rows = [{"text": f"slow row {i}", "category": ("sports", "politics")[i % 2]} for i in range(20)]
        uploader = threading.Thread(target=trickle, args=(url, key, profile_id, rows, DRAIN + 1.0, upload))
        uploader.start()
        stuck = socket.create_connection(("127.0.0.1", port))  # a request whose body never comes
        stuck.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
        time.sleep(0.3)
        sent_at = time.monotonic()
        api.send_signal(signal.SIGTERM)
        code = api.wait(DRAIN + TIMEOUT + 30)
        exited_after = time.monotonic() - sent_at
        load.stop.set()
        for thread in load.threads + [uploader]:
            thread.join(30)
        stuck.close()
    finally:
        stop(api, signal.SIGKILL)
    served = sum(n for outcome, n in load.outcomes.items() if outcome == 200)
    print(f"\nAPI SIGTERM under load: {sum(load.outcomes.values())} requests by {CLIENTS} clients over "
          f"{LOAD_SECONDS:.0f} s, outcomes {dict(load.outcomes)}, p99 {load.p99() * 1000:.0f} ms, not ready "
          f"{(load.not_ready_at or float('nan')) - sent_at:.2f} s after SIGTERM, slow upload {upload.get('status')}, "
          f"exit {code} after {exited_after:.1f} s")
    assert code == 0, log.read_text()[-3000:]
    assert served > 0 and set(load.outcomes) == {200}, load.outcomes  # no 5xx, no request left unanswered
    assert load.not_ready_at is not None and load.not_ready_at - sent_at < 1.0  # readiness turned at once
    assert upload["status"] == 200, upload  # in flight at SIGTERM: finished and stored
    with store() as session:
        assert session.scalar(select(func.count()).select_from(Example)
                              .where(Example.profile_id == profile_id)) == len(rows)
    assert exited_after < DRAIN + TIMEOUT + 10  # the stuck request held it no longer than the timeout


def test_sigterm_to_a_worker_hands_its_job_back(backend, tiny_backbone_dir, settings, sessions,  # noqa: F811
                                                 tmp_path):
    """A rolling restart: a second worker is already up (its start-up recovery is over) when the first is
    told to stop mid-job, so only the handed-back job's new message can bring the job to it."""
    env = environment(backend, tiny_backbone_dir)
    job_id = long_job(sessions, "long-job")
    enqueue(make_celery(settings), job_id)
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    second = None
    try:
        wait_for(lambda: training(sessions, job_id), 120, "the job to train", log)
        second = start_worker(env, log)
        wait_for(lambda: live_worker(sessions, second), 120, "the second worker to start", log)
        sent_at = time.monotonic()
        os.killpg(first.pid, signal.SIGTERM)
        code = first.wait(60)
        stopped_after = time.monotonic() - sent_at
        with sessions() as session:
            messages = [e.message for e in repo.get_job(session, job_id=job_id).events]
        assert code == 0, log.read_text()[-3000:]
        assert any("re-queued" in m and "stopping" in m for m in messages), messages
        job = wait_for(lambda: training(sessions, job_id), 120, "the second worker to take the job", log)
        assert job.attempts == 1 and job.worker.endswith(f":{second.pid}")  # the stop was not counted
        if not FULL:  # the fast form stops here; the full one trains it to the end
            with sessions() as session:
                repo.request_cancel(session, job_id=job_id)
        job = wait_for(lambda: finished(sessions, job_id), 900, "the job to end on the second worker", log)
    finally:
        stop(first, signal.SIGKILL)
        if second is not None:
            stop(second)
    print(f"\nworker SIGTERM mid-job: exit {code} after {stopped_after:.1f} s; the job ended {job.state} on the "
          f"second worker, attempt {job.attempts}")
    assert stopped_after < 30  # it stopped at a step, not after its remaining training
    if FULL:
        assert job.state == "succeeded" and job.attempts == 1, job.error
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Artifact).where(Artifact.job_id == job_id)) == 1
    else:
        assert job.state == "cancelled"


def live_worker(store, process: subprocess.Popen) -> bool:
    """The worker has started (its first heartbeat is written after its start-up recovery)."""
    with store() as session:
        return any(w.name.endswith(f":{process.pid}") and w.stopped_at is None for w in repo.list_workers(session))


def embedded(tmp_path, backbone_dir) -> tuple[dict, Settings]:
    """`make run`'s settings: SQLite and the SQLite broker in a data folder, no URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILEKIT_")}
    env |= {"PROFILEKIT_DATA_DIR": str(tmp_path / "data"), "PROFILEKIT_BACKBONE_PATH": str(backbone_dir),
            "PROFILEKIT_DEFAULT_POOL_SIZE": "12"}
    return env, Settings(data_dir=tmp_path / "data", backbone_path=backbone_dir, default_pool_size=12)


def worker_children(process: subprocess.Popen) -> list[psutil.Process]:
    return [c for c in psutil.Process(process.pid).children() if "worker" in " ".join(c.cmdline())]


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # exited, waiting for whoever adopted it to reap it
    except psutil.NoSuchProcess:
        return True


def test_serve_takes_its_worker_with_it_when_killed(tiny_backbone_dir, tmp_path):  # noqa: F811
    env, _ = embedded(tmp_path, tiny_backbone_dir)
    port, log = free_port(), tmp_path / "serve.log"
    server = serve(env, port, log)
    try:
        wait_for(lambda: ready(f"http://127.0.0.1:{port}"), 120, "serve to be ready", log)
        [worker] = wait_for(lambda: worker_children(server), 60, "the worker child", log)
        os.killpg(server.pid, signal.SIGKILL)  # as `kill -9` of make run's process group
        killed_at = time.monotonic()
        server.wait(10)
        wait_for(lambda: gone(worker), 30, "the worker child to exit", log)
    finally:
        stop(server, signal.SIGKILL)
    print(f"\nserve SIGKILLed: its worker child exited {time.monotonic() - killed_at:.1f} s later")


def test_ctrl_c_stops_serve_with_exit_0_and_hands_the_running_job_back(tiny_backbone_dir, tmp_path):  # noqa: F811
    env, settings = embedded(tmp_path, tiny_backbone_dir)  # noqa: F811
    upgrade(settings.resolved_database_url)
    store = make_session_factory(make_engine(settings.resolved_database_url))
    job_id = long_job(store, "long-job")
    port, log = free_port(), tmp_path / "serve.log"
    server = serve(env, port, log)
    try:
        enqueue(make_celery(settings), job_id)
        wait_for(lambda: training(store, job_id), 180, "the job to train in serve's worker", log)
        [worker] = worker_children(server)
        sent_at = time.monotonic()
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground process group
        code = server.wait(60)
        stopped_after = time.monotonic() - sent_at
    finally:
        stop(server, signal.SIGKILL)
    print(f"\nCtrl-C: serve exited {code} after {stopped_after:.1f} s")
    assert code == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    assert stopped_after < 30
    assert gone(worker)
    job = job_state(store, job_id)
    assert job.state == "queued" and job.attempts == 0, (job.state, job.attempts)
