"""Real worker processes started by infra/start-worker.sh, on the embedded default and on
PostgreSQL + Redis: onboarding from the command line, and a worker killed mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from profilekit.jobs import enqueue
from profilekit.jobs import make_celery as create_app
from profilekit.store import Artifact, Profile, make_engine, make_session_factory, repo
from tests.engine.test_training import profile as synthetic
from tests.workers.test_runner import add_profile

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def environment(backend, backbone_dir) -> dict:
    return backend.env(PROFILEKIT_BACKBONE_PATH=str(backbone_dir), PROFILEKIT_DEFAULT_POOL_SIZE="60",
                       PROFILEKIT_JOB_STALE_SECONDS="3", PROFILEKIT=str(BIN / "profilekit"),
                       PATH=f"{BIN}:{os.environ['PATH']}")


def start_worker(env, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(REPO / "infra" / "start-worker.sh"), "--loglevel", "INFO"], env=env, cwd=REPO,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(30)


def wait_for(predicate, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def test_onboard_trains_every_author_through_a_real_worker(backend, tiny_backbone_dir, tmp_path):
    env = environment(backend, tiny_backbone_dir)
    dataset = tmp_path / "authors.jsonl"
    with dataset.open("w") as handle:
        for author, seed in (("Ann Writer", 0), ("Bo Reporter", 1)):
            data = synthetic(author, 5, seed=seed)
            for text, label in zip(data.texts, data.labels):
                handle.write(json.dumps({"text": text, "category": label, "author": author}) + "\n")
        handle.write(json.dumps({"text": "one row only", "category": "food", "author": "Rare Author"}) + "\n")
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        done = subprocess.run([str(BIN / "profilekit"), "onboard", str(dataset), "--min-rows", "5", "--epochs", "2",
                               "--wait", "--no-worker"], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=240)
        with make_session_factory(make_engine(backend.database_url))() as session:  # the dashboard's workers
            [alive] = repo.list_workers(session)
        assert alive.name.endswith(f":{worker.pid}") and alive.stopped_at is None
    finally:
        stop(worker)
    with make_session_factory(make_engine(backend.database_url))() as session:
        [stopped] = repo.list_workers(session)
    assert stopped.stopped_at is not None and stopped.heartbeat_at >= alive.heartbeat_at
    assert done.returncode == 0, done.stdout + done.stderr + log.read_text()[-3000:]
    lines = done.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("profile"))):]
    assert len(table) == 3 and "Rare Author" not in done.stdout
    for line in table[1:]:
        assert "xpeft_hard" in line and "succeeded" in line
    profile_id = table[1].split()[0]
    listed = subprocess.run([str(BIN / "profilekit"), "jobs", "--state", "succeeded"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "xpeft_hard" in listed.stdout and "succeeded" in listed.stdout
    predicted = subprocess.run([str(BIN / "profilekit"), "predict", "--profile", profile_id,
                                "senate vote on the election bill"], env=env, capture_output=True, text=True,
                               timeout=120)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.split("\t")[0] in ("politics", "sports")
    unknown = subprocess.run([str(BIN / "profilekit"), "predict", "--profile", "nope", "text"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown profile nope" in unknown.stderr


def test_a_worker_killed_mid_job_leaves_it_to_a_restarted_worker(backend, tiny_backbone_dir, settings, sessions,
                                                                  tmp_path):
    env = environment(backend, tiny_backbone_dir)
    with sessions() as session:
        profile = add_profile(session, "long-job", n_per_label=12)
        job, _ = repo.create_job(session, kind="train", profile_ids=[profile.id],
                                 params={"method": "head_only", "train": {"epochs": 150, "patience": 100,
                                                                         "batch_size": 2}})
        session.commit()
        job_id, profile_id = job.id, profile.id
    enqueue(create_app(settings), job_id)

    def progress():
        with sessions() as session:
            job = repo.get_job(session, job_id=job_id)
            return job if job.state == "running" and job.progress.get("step", 0) > 0 else None

    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        running = wait_for(progress, 120, "the job to start running", log)
        stop(first, signal.SIGKILL)  # no clean shutdown, no acknowledgement
    finally:
        stop(first, signal.SIGKILL)
    assert running.attempts == 1
    with sessions() as session:
        assert repo.get_job(session, job_id=job_id).state == "running"  # as the dead worker left it
    time.sleep(3.5)  # its heartbeat goes stale
    second = start_worker(env, log)
    try:
        def finished():
            with sessions() as session:
                job = repo.get_job(session, job_id=job_id)
                return job if job.state in ("succeeded", "failed", "cancelled") else None

        job = wait_for(finished, 240, "the job to finish on the restarted worker", log)
    finally:
        stop(second)
    assert job.state == "succeeded" and job.attempts == 2, job.error
    with sessions() as session:
        artifacts = session.scalars(select(Artifact).where(Artifact.profile_id == profile_id)).all()
        assert len(artifacts) == 1
        assert session.get(Profile, profile_id).current_artifact_id == artifacts[0].id
        assert any("re-queued" in e.message for e in repo.get_job(session, job_id=job_id).events)
