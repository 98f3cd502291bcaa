"""Commands on the store and the job queue: db, worker, onboard, jobs, predict, profiles, artifacts. With
--url (or PROFILEKIT_URL) onboard, jobs, predict, profiles and artifacts talk to a running service instead
(cli/remote.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from profilekit.cli import remote
from profilekit.cli.common import (
    artifacts_table,
    jobs_table,
    predictions_text,
    profiles_table,
    progress_bar,
    table,
    train_settings,
)
from profilekit.data import MIN_ROWS
from profilekit.jobs import FINAL_STATES, JOB_STATES
from profilekit.settings import get_settings


def _sessions():
    from profilekit.store import make_engine, make_session_factory

    return make_session_factory(make_engine(get_settings().resolved_database_url))


def db_upgrade(args) -> int:
    from profilekit.cli.key_commands import bootstrap_admin
    from profilekit.store.migrate import upgrade

    url = get_settings().resolved_database_url
    upgrade(url)
    print(f"database at {url.split('@')[-1]} is at the newest schema")
    bootstrap_admin(get_settings())
    return 0


def db_wait(args) -> int:
    """Wait until the database accepts connections (start scripts run this first)."""
    from sqlalchemy import text

    from profilekit.store import make_engine

    engine = make_engine(get_settings().resolved_database_url)
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return 0
        except Exception as exc:  # any driver error means: not up yet
            if time.monotonic() > deadline:
                print(f"profilekit: database not reachable after {args.timeout} s: {exc}", file=sys.stderr)
                return 1
            time.sleep(1)


def worker(args) -> int:
    from workers.main import start_worker

    start_worker(pool=args.pool, concurrency=args.concurrency, loglevel=args.loglevel, parent_pid=args.exit_with_parent)
    return 0


def _start_embedded_worker() -> subprocess.Popen:
    """The embedded mode's worker, a child of this process: in a session of its own (Ctrl-C reaches only us,
    and we stop it in order), and stopping by itself when we die, even by SIGKILL."""
    return subprocess.Popen([sys.executable, "-m", "profilekit.cli", "worker", "--loglevel", "WARNING",
                             "--exit-with-parent", str(os.getpid())],
                            env=os.environ.copy(), stdout=subprocess.DEVNULL, start_new_session=True)


def stop_embedded_worker(worker: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM: the worker hands its running job back to the queue at the next training step and exits.
    One that does not exit within `timeout` is killed (its job is then re-queued as an orphan)."""
    worker.terminate()
    try:
        worker.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"profilekit: the worker did not stop within {timeout:.0f} s; killing it", file=sys.stderr)
        worker.kill()
        worker.wait()


def onboard(args) -> int:
    from profilekit.data import read_rows
    from profilekit.jobs import TrainConfig, create_training_jobs, default_pool, enqueue, make_celery, untrainable
    from profilekit.store import repo
    from profilekit.store.migrate import upgrade

    train = train_settings(args)
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    rows = read_rows(args.file)
    sessions = _sessions()
    with sessions() as session:
        profiles = repo.upsert_author_profiles(session, rows=rows, min_rows=args.min_rows)
        if not profiles:
            print(f"profilekit: no author in {args.file} has {args.min_rows} rows or more", file=sys.stderr)
            return 2
        refused = {r["id"]: r["reason"] for r in untrainable(session, [p.id for p in profiles], TrainConfig(**train))}
        for profile in profiles:
            if profile.id in refused:
                print(f"not trained: {profile.external_id} ({refused[profile.id]})", file=sys.stderr)
        profiles = [p for p in profiles if p.id not in refused]
        jobs = create_training_jobs(session, profile_ids=[p.id for p in profiles], method=args.method,
                                    pool=default_pool(settings, session, "default"), train=train,
                                    per_job=args.profiles_per_job)
        session.commit()
        authors = {p.id: p.external_id for p in profiles}
        job_ids = [j.id for j in jobs]
    app = make_celery(settings)
    for job_id in job_ids:
        enqueue(app, job_id)
    print(f"onboarded {len(authors)} profiles from {args.file}; {len(job_ids)} training job(s) queued")
    if not args.wait:
        print(table([[pid, author] for pid, author in authors.items()], ["profile", "author"]))
        return 0
    helper = _start_embedded_worker() if settings.embedded and not args.no_worker else None
    try:
        states = _wait(sessions, job_ids)
    finally:
        if helper is not None:
            stop_embedded_worker(helper)
    _print_profiles(sessions, authors, job_ids)
    return 0 if all(s == "succeeded" for s in states.values()) else 1


def _wait(sessions, job_ids: list[str]) -> dict[str, str]:
    from profilekit.store import repo

    bar = progress_bar(0, "training")
    while True:
        with sessions() as session:
            jobs = [repo.get_job(session, job_id=j) for j in job_ids]
        total = sum(j.progress.get("total_steps", 0) for j in jobs)
        done = sum(j.progress.get("total_steps", 0) if j.state in FINAL_STATES else j.progress.get("step", 0)
                   for j in jobs)
        bar.total = max(total, done, 1)
        bar.n = done
        running = [j for j in jobs if j.state == "running" and j.progress]
        if running:
            bar.set_postfix(epoch=running[0].progress.get("epoch"), loss=f"{running[0].progress.get('loss', 0):.3f}")
        bar.refresh()
        if all(j.state in FINAL_STATES for j in jobs):
            bar.close()
            return {j.id: j.state for j in jobs}
        time.sleep(0.5)


def _print_profiles(sessions, authors: dict[str, str], job_ids: list[str]) -> None:
    from profilekit.store import repo

    rows = []
    with sessions() as session:
        job_of = {}
        for job_id in job_ids:
            job = repo.get_job(session, job_id=job_id)
            for pid in job.profile_ids:
                job_of[pid] = job
        for pid, author in authors.items():
            profile = repo.get_profile(session, profile_id=pid)
            job = job_of[pid]
            artifact = repo.current_artifact(session, profile=profile)
            fresh = artifact is not None and artifact.job_id == job.id
            metrics = artifact.metrics if fresh else {}
            rows.append([pid, author, job.params.get("method"), job.state,
                         f"{metrics['accuracy']:.3f}" if fresh else "-", f"{metrics['macro_f1']:.3f}" if fresh else "-",
                         artifact.stored_bytes if fresh else "-"])
            if job.state == "failed":
                rows[-1][3] = f"failed: {job.error}"
    print(table(rows, ["profile", "author", "method", "state", "accuracy", "macro_f1", "stored_bytes"]))


def jobs(args) -> int:
    from profilekit.api.services.jobs import job_out
    from profilekit.store import repo
    from profilekit.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url)  # a fresh embedded store has no tables yet
    sessions = _sessions()
    if args.wait and args.job:
        _wait(sessions, args.job)
    with sessions() as session:
        found = [repo.get_job(session, job_id=j) for j in args.job] if args.job else \
            repo.list_jobs(session, state=args.state, limit=args.limit)
        found = [job_out(j).model_dump(mode="json") for j in found]
    print(jobs_table(found))
    return 0 if not args.wait or all(j["state"] == "succeeded" for j in found) else 1


def profiles(args) -> int:
    from profilekit.api.auth import Caller
    from profilekit.api.services.profiles import list_profiles
    from profilekit.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    with _sessions()() as session:
        page = list_profiles(session, Caller("local", "default", "admin"), cursor=args.cursor, limit=args.limit)
    print(profiles_table([p.model_dump(mode="json") for p in page.items]))
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return 0


def artifacts(args) -> int:
    """A profile's artifact versions (the current one starred); --promote ID makes that one current."""
    from profilekit.api.auth import Caller
    from profilekit.api.services.profiles import artifact_versions, promote_artifact
    from profilekit.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    local = Caller("local", "default", "admin")
    with _sessions()() as session:
        if args.promote:
            promote_artifact(session, local, args.profile, args.promote)
        versions = artifact_versions(session, local, args.profile)
    print(artifacts_table([v.model_dump(mode="json") for v in versions]))
    return 0


def predict(args) -> int:
    from profilekit.serving import ArtifactCache, EngineCache, load_states

    engines = EngineCache(get_settings())
    with _sessions()() as session:
        states = load_states(session, profile_ids=[args.profile], engines=engines, cache=ArtifactCache())
    state, _ = states[args.profile]
    predictions = engines.engine().predict(args.texts, [state] * len(args.texts))
    print(predictions_text(args.texts, [{"label": p.label, "scores": p.scores} for p in predictions]))
    return 0


def add_commands(commands) -> None:
    p = commands.add_parser("db", help="database schema")
    sub = p.add_subparsers(dest="db_command", required=True)
    sub.add_parser("upgrade", help="apply the migrations").set_defaults(func=db_upgrade)
    w = sub.add_parser("wait", help="wait for the database to accept connections")
    w.add_argument("--timeout", type=float, default=60)
    w.set_defaults(func=db_wait)

    p = commands.add_parser("worker", help="start a training worker (loads the backbone once)")
    p.add_argument("--pool", default="solo", help="solo (GPU workers, default) or prefork")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--exit-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)  # embedded mode's child
    p.set_defaults(func=worker)

    p = commands.add_parser("onboard", help="import a LaMP-style file, one profile per author, and train")
    p.add_argument("file", help="JSONL/CSV rows of text, category, author; or a LaMP-2 *_questions.json")
    p.add_argument("--min-rows", type=int, default=MIN_ROWS,
                   help=f"authors with at least this many rows become profiles (default {MIN_ROWS})")
    p.add_argument("--method", default="xpeft-hard")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--profiles-per-job", type=int, default=16, help="profiles packed into one training job")
    p.add_argument("--wait", action="store_true", help="show progress until the jobs end, then the results")
    p.add_argument("--no-worker", action="store_true",
                   help="embedded mode: do not start a worker for --wait (one is already running)")
    p.set_defaults(func=onboard, remote=remote.onboard)

    p = commands.add_parser("jobs", help="list training jobs, or show (and --wait for) the named ones")
    p.add_argument("job", nargs="*", help="job ids (default: the latest jobs)")
    p.add_argument("--state", choices=JOB_STATES)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--wait", action="store_true", help="with job ids: show progress until they end")
    p.set_defaults(func=jobs, remote=remote.jobs)

    p = commands.add_parser("artifacts", help="a profile's artifact versions (* = current); --promote one to "
                            "make it current again (a rollback)")
    p.add_argument("profile")
    p.add_argument("--promote", metavar="ARTIFACT", help="make this artifact of the profile its current one")
    p.set_defaults(func=artifacts, remote=remote.artifacts)

    p = commands.add_parser("predict", help="predict labels for texts with a profile's current artifact")
    p.add_argument("--profile", required=True)
    p.add_argument("texts", nargs="+")
    p.set_defaults(func=predict, remote=remote.predict)

    p = commands.add_parser("profiles", help="list profiles: status, examples, method, accuracy, stored bytes")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--cursor", help="continue after this profile id (printed when there are more)")
    p.set_defaults(func=profiles, remote=remote.profiles)
