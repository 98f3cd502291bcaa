"""20-way races on every unique key the API writes, over real HTTP against uvicorn, on the embedded
default and on PostgreSQL: a profile's external id (201 once, 409 for the rest), a job's idempotency
key (one job, every answer names it), and a dataset naming the same new author (one profile). Before
the fix, PostgreSQL answered some of them 500 (UniqueViolation uq_profiles_tenant_external_id)."""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from profilekit.store.models import Job, Profile

pytestmark = pytest.mark.reliability
WAYS = 20
ROUNDS = 5 if os.environ.get("PROFILEKIT_RELIABILITY_FULL") else 1  # the full run repeats each race


def race(server, key: str, send) -> list[httpx.Response]:
    """`send(http)` from WAYS clients at once, each on a connection of its own."""
    clients = [server.http(key) for _ in range(WAYS)]
    try:
        with ThreadPoolExecutor(WAYS) as pool:
            return list(pool.map(send, clients))
    finally:
        for client in clients:
            client.close()


def count(server, query) -> int:
    with server.runtime.sessions() as session:
        return session.scalar(query)


def test_concurrent_creates_of_one_external_id_give_one_201_and_409s(server):
    for round_ in range(ROUNDS):
        external_id = f"racer-{round_}"
        answers = race(server, server.client, lambda http, e=external_id: http.post("/v1/profiles",
                                                                                json={"external_id": e}))
        assert Counter(a.status_code for a in answers) == {201: 1, 409: WAYS - 1}, [a.text for a in answers]
        [created] = [a.json()["id"] for a in answers if a.status_code == 201]
        assert all(created in a.json()["detail"] for a in answers if a.status_code == 409)
        assert count(server, select(func.count()).select_from(Profile)
                     .where(Profile.external_id == external_id)) == 1


def test_concurrent_jobs_with_one_idempotency_key_make_one_job(server):
    rows = "\n".join(json.dumps({"text": f"{w} {i}", "category": c})
                     for c, w in (("sports", "match"), ("politics", "senate")) for i in range(5))
    with server.http(server.client) as http:
        profile = http.post("/v1/profiles", json={"external_id": "idem"}).json()["id"]
        http.post(f"/v1/profiles/{profile}/examples", content=rows,
                  headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
    body = {"profile_ids": [profile], "method": "head_only", "train": {"epochs": 1}}
    for round_ in range(ROUNDS):
        answers = race(server, server.client, lambda http, r=round_: http.post(
            "/v1/jobs", json=body, headers={"Idempotency-Key": f"same-{r}"}))
        assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert count(server, select(func.count()).select_from(Job)
                     .where(Job.idempotency_key == f"same-{round_}")) == 1


def test_concurrent_datasets_naming_one_new_author_make_one_profile(server):
    for round_ in range(ROUNDS):
        author = f"new-author-{round_}"
        rows = "\n".join(json.dumps({"text": f"story {i}", "category": "news", "author": author}) for i in range(3))
        answers = race(server, server.client, lambda http, rows=rows: http.post(
            "/v1/datasets?min_rows=3", content=rows, headers={"Content-Type": "application/x-ndjson"}))
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
        assert len({a.json()["profiles"][0]["id"] for a in answers}) == 1
        assert count(server, select(func.count()).select_from(Profile).where(Profile.external_id == author)) == 1
