"""How long /dashboard takes with N stored profiles: `python -m bench.dashboard --profiles 1000000`.

Profiles and their current artifacts are inserted in bulk (tiny payloads, stored sizes spread over the
histogram's buckets, two tenants, two methods, a second artifact for every 1000th profile); then the
dashboard is rendered through the app, on its first page, on a later page and with a search."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, update


def fill(sessions, n: int, chunk: int = 50_000) -> None:
    from profilekit.store.models import Artifact, Profile, new_id, now

    moment = now()
    with sessions() as session:
        for start in range(0, n, chunk):
            ids = [new_id() for _ in range(start, min(n, start + chunk))]
            artifacts = [new_id() for _ in ids]
            session.execute(insert(Profile), [{"id": pid, "tenant": "acme" if i % 3 else "globex",
                                               "external_id": f"user-{start + i}", "created_at": moment,
                                               "updated_at": moment} for i, pid in enumerate(ids)])
            session.execute(insert(Artifact), [
                {"id": aid, "profile_id": pid, "method": "xpeft_hard" if i % 2 else "head_only", "payload": b"x",
                 "payload_bytes": 203, "stored_bytes": 200 + (start + i) % 20_000, "hyperparameters": {},
                 "metrics": {"accuracy": 0.8}, "created_at": moment}
                for i, (pid, aid) in enumerate(zip(ids, artifacts, strict=True))])
            session.execute(update(Profile), [{"id": pid, "current_artifact_id": aid}
                                              for pid, aid in zip(ids, artifacts, strict=True)])
            session.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient

    from profilekit.api.app import create_app
    from profilekit.api.auth import create_key
    from profilekit.settings import Settings
    from profilekit.store import make_engine, make_session_factory
    from profilekit.store.migrate import upgrade

    folder = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=folder, database_url=args.database_url, preload_model=False, secret_key="bench")
    upgrade(settings.resolved_database_url)
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    began = time.perf_counter()
    fill(sessions, args.profiles)
    print(f"{args.profiles:,} profiles stored in {time.perf_counter() - began:.0f} s")
    with sessions() as session:
        key = create_key(session, tenant="ops", role="admin")
    with TestClient(create_app(settings)) as http:
        for what, query in (("first page", ""), ("a later page", "&after=8"), ("search", "&q=user-12345")):
            began = time.perf_counter()
            answer = http.get(f"/dashboard?refresh=0{query}", headers={"Authorization": f"Bearer {key}"})
            answer.raise_for_status()
            print(f"/dashboard, {what}: {time.perf_counter() - began:.2f} s, {len(answer.content) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
