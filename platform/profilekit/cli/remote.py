"""The command line against a running service: `profilekit --url URL --api-key KEY onboard|jobs|predict|
profiles|artifacts`, and with an admin key `keys create|list|revoke` and `pools build|list|set-default` (or
PROFILEKIT_URL / PROFILEKIT_API_KEY), through profilekit.client. It needs no database URL and loads no model."""

from __future__ import annotations

import sys

from profilekit.cli.common import (
    artifacts_table,
    jobs_table,
    keys_table,
    pool_named,
    pools_table,
    predictions_text,
    print_new_key,
    profiles_table,
    table,
    train_settings,
)
from profilekit.client import Client, Invalid


def onboard(args, pk: Client) -> int:
    """Upload the file (one profile per author), train in jobs of --profiles-per-job profiles; profiles
    the service refuses to train (one label) are left out and named."""
    train = train_settings(args)
    uploaded = pk.upload(args.file, min_rows=args.min_rows)
    authors = {p["id"]: p["external_id"] for p in uploaded["profiles"]}
    if not authors:
        print(f"profilekit: no author in {args.file} has {args.min_rows} rows or more", file=sys.stderr)
        return 2
    ids, jobs = list(authors), []
    for start in range(0, len(ids), args.profiles_per_job):
        chunk = ids[start:start + args.profiles_per_job]
        try:
            jobs.append(pk.train(chunk, args.method, train=train))
        except Invalid as exc:
            if not exc.profiles:
                raise
            refused = {p["id"]: p["reason"] for p in exc.profiles}
            for pid, reason in refused.items():
                print(f"not trained: {authors.pop(pid)} ({reason})", file=sys.stderr)
            if rest := [pid for pid in chunk if pid not in refused]:
                jobs.append(pk.train(rest, args.method, train=train))
    print(f"onboarded {len(authors)} profiles from {args.file}; {len(jobs)} training job(s) queued")
    if not args.wait:
        print(table([[pid, author] for pid, author in authors.items()], ["profile", "author"]))
        return 0
    finished = [pk.wait(job) for job in jobs]
    state_of = {pid: job for job in finished for pid in job["profile_ids"]}
    rows = []
    for pid, author in authors.items():
        job, artifact = state_of[pid], pk.profile(pid)["artifact"]
        fresh = job["state"] == "succeeded" and artifact is not None
        metrics = artifact["metrics"] if fresh else {}
        rows.append([pid, author, job["params"].get("method"),
                     job["state"] if job["state"] != "failed" else f"failed: {job['error']}",
                     f"{metrics['accuracy']:.3f}" if fresh else "-", f"{metrics['macro_f1']:.3f}" if fresh else "-",
                     artifact["stored_bytes"] if fresh else "-"])
    print(table(rows, ["profile", "author", "method", "state", "accuracy", "macro_f1", "stored_bytes"]))
    return 0 if all(job["state"] == "succeeded" for job in finished) else 1


def jobs(args, pk: Client) -> int:
    found = [pk.job(job_id) for job_id in args.job] if args.job else pk.jobs(state=args.state, limit=args.limit)
    if args.wait:
        found = [pk.wait(job) for job in found]
    print(jobs_table(found))
    return 0 if not args.wait or all(job["state"] == "succeeded" for job in found) else 1


def predict(args, pk: Client) -> int:
    print(predictions_text(args.texts, pk.predict([(args.profile, text) for text in args.texts])))
    return 0


def profiles(args, pk: Client) -> int:
    page = pk.list_profiles(cursor=args.cursor, limit=args.limit)
    print(profiles_table(page["items"]))
    if page["next_cursor"]:
        print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)
    return 0


def artifacts(args, pk: Client) -> int:
    if args.promote:
        pk.promote(args.profile, args.promote)
    print(artifacts_table(pk.artifacts(args.profile)))
    return 0


def keys_create(args, pk: Client) -> int:
    from profilekit.api.auth import check_key_request, check_rate

    check_key_request(tenant=args.tenant, role=args.role)  # the local command's messages, before any request
    check_rate(args.rows_per_second)
    created = pk.create_key(role=args.role, tenant=args.tenant, name=args.name, rows_per_second=args.rows_per_second)
    print_new_key(created["key"], args.role, args.tenant)
    return 0


def keys_list(args, pk: Client) -> int:
    print(keys_table(pk.keys()))
    return 0


def keys_revoke(args, pk: Client) -> int:
    pk.revoke_key(args.id)
    print(f"revoked key {args.id}; its dashboard sessions are ended")
    return 0


def pools_build(args, pk: Client) -> int:
    if args.data:
        print("profilekit: error: `pools build --data` onboards on the database; with --url upload the file first "
              "(POST /v1/datasets with a key of the tenant), then build with --largest or --profiles", file=sys.stderr)
        return 2
    job = pk.build_pool(profile_ids=args.profiles, largest=None if args.profiles else args.largest, tenant=args.tenant,
                        name=args.name, set_default=args.set_default,
                        train={"epochs": args.epochs} if args.epochs is not None else {})
    print(f"building a warm pool of tenant {args.tenant!r} from {len(job['profile_ids'])} profiles: job {job['id']}")
    if not args.wait:
        return 0
    job = pk.wait(job)
    pool = job["progress"].get("pool_hash")
    print(f"job {job['state']}" + (f": {job['error']}" if job["error"] else f"; pool {pool}"))
    return 0 if job["state"] == "succeeded" else 1


def pools_list(args, pk: Client) -> int:
    print(pools_table(pk.pools()))
    return 0


def pools_set_default(args, pk: Client) -> int:
    chosen = pool_named(args.pool, [p["pool_hash"] for p in pk.pools()])
    pk.set_default_pool(chosen, tenant=args.tenant)
    print(f"tenant {args.tenant!r} now trains on " + (f"pool {chosen}" if chosen else "the random default pool"))
    return 0
