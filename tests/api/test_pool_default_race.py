"""Operators (or a script) setting a tenant's default pool at the same moment, some back to the random pool:
the last write wins and every request gets its answer, never a 500 from a row another request removed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from profilekit.store import repo


def test_concurrent_default_pool_changes_all_answer(server):
    server.trained_profile("a", "xpeft_hard", {"k": 2})  # registers the random pool it trained on
    with server.runtime.sessions() as session:
        [pool] = repo.list_pools(session)

    def put(i: int) -> int:
        with server.http(server.admin) as admin:
            body = {"pool_hash": pool.pool_hash if i % 2 else None, "tenant": "acme"}
            return admin.put("/v1/pools/default", json=body).status_code

    with ThreadPoolExecutor(8) as threads:
        statuses = list(threads.map(put, range(200)))
    assert set(statuses) == {200}, statuses
