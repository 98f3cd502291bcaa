"""`profilekit pools build|list|set-default`: warm pools from a tenant's own profiles, on the store (or, with
--url, through /v1/pools: cli/remote.py)."""

from __future__ import annotations

import argparse

from profilekit.cli import remote
from profilekit.cli.common import pool_named, pools_table
from profilekit.data import MIN_ROWS
from profilekit.settings import get_settings


def build(args) -> int:
    """Queue a build_pool job over the tenant's largest profiles, given ones, or a file's authors."""
    from profilekit.cli.store_commands import _sessions, _start_embedded_worker, _wait
    from profilekit.jobs import create_pool_job, enqueue, make_celery
    from profilekit.store import repo
    from profilekit.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    sessions = _sessions()
    with sessions() as session:
        if args.data:
            from profilekit.data import read_rows

            authors = {p.id for p in repo.upsert_author_profiles(session, rows=read_rows(args.data),
                                                                 tenant=args.tenant, min_rows=args.min_rows)}
            session.flush()
            ranked = repo.largest_profiles(session, tenant=args.tenant, count=10**9)
            ids = [pid for pid in ranked if pid in authors][:args.largest]
        elif args.profiles:
            ids = args.profiles
            for pid in ids:
                repo.get_profile(session, profile_id=pid, tenant=args.tenant)
        else:
            ids = repo.largest_profiles(session, tenant=args.tenant, count=args.largest)
        train = {"epochs": args.epochs} if args.epochs is not None else {}
        job = create_pool_job(session, profile_ids=ids, tenant=args.tenant, name=args.name,
                              set_default=args.set_default, train=train)
        session.commit()
        job_id = job.id
    enqueue(make_celery(settings), job_id)
    print(f"building a warm pool of tenant {args.tenant!r} from {len(ids)} profiles: job {job_id}")
    if not args.wait:
        return 0
    helper = _start_embedded_worker() if settings.embedded and not args.no_worker else None
    try:
        state = _wait(sessions, [job_id])[job_id]
    finally:
        if helper is not None:
            helper.terminate()
            helper.wait(30)
    with sessions() as session:
        job = repo.get_job(session, job_id=job_id)
        print(f"job {job.state}" + (f": {job.error}" if job.error else f"; pool {job.progress.get('pool_hash')}"))
    return 0 if state == "succeeded" else 1


def list_pools(args) -> int:
    from profilekit.api.auth import Caller
    from profilekit.api.services.pools import list_pools as pools
    from profilekit.cli.store_commands import _sessions
    from profilekit.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    with _sessions()() as session:
        found = pools(session, Caller("local", "default", "admin"))
    print(pools_table([p.model_dump(mode="json") for p in found]))
    return 0


def set_default(args) -> int:
    from profilekit.cli.store_commands import _sessions
    from profilekit.store import repo
    from profilekit.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    with _sessions()() as session:
        chosen = pool_named(args.pool, [p.pool_hash for p in repo.list_pools(session)])
        repo.set_tenant_pool(session, tenant=args.tenant, pool_hash=chosen)
        session.commit()
    print(f"tenant {args.tenant!r} now trains on " + (f"pool {chosen}" if chosen else "the random default pool"))
    return 0


def bounded(low: int, high: int):
    """An argparse type: an integer in [low, high], the bounds POST /v1/pools keeps (argparse names the flag)."""
    def integer(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {value}")
        return value

    return integer


def add_commands(commands) -> None:
    p = commands.add_parser("pools", help="warm pools built from a tenant's profiles")
    sub = p.add_subparsers(dest="pools_command", required=True)
    b = sub.add_parser("build", help="build a warm pool from a tenant's profiles with the most data")
    b.add_argument("--tenant", default="default")
    b.add_argument("--largest", type=bounded(2, 1000), default=100, help="the tenant's profiles with most examples (N)")
    b.add_argument("--profiles", nargs="+", help="these profile ids instead")
    b.add_argument("--data", help="onboard this file's authors into the tenant first, and build from them")
    b.add_argument("--min-rows", type=int, default=MIN_ROWS,
                   help=f"with --data: authors with at least this many rows (default {MIN_ROWS}, as everywhere)")
    b.add_argument("--name")
    b.add_argument("--epochs", type=bounded(1, 500), default=None)
    b.add_argument("--set-default", action="store_true", help="make it the tenant's default pool once built")
    b.add_argument("--wait", action="store_true", help="show progress until the job ends")
    b.add_argument("--no-worker", action="store_true", help="embedded mode: do not start a worker for --wait")
    b.set_defaults(func=build, remote=remote.pools_build)
    sub.add_parser("list", help="pools, what built them, whose default they are").set_defaults(
        func=list_pools, remote=remote.pools_list)
    d = sub.add_parser("set-default", help="the pool a tenant's jobs train on when they name none")
    d.add_argument("pool", help="a pool hash (or its first characters), or 'random' for the random default")
    d.add_argument("--tenant", default="default")
    d.set_defaults(func=set_default, remote=remote.pools_set_default)


