"""Predict rows are rate-limited per key: a token bucket of the key's rows/s (its own, set with `profilekit
keys create|limit --rows-per-second`, else the server's default). An empty bucket answers 429 with
Retry-After and a body naming the limit; a key without any limit is never refused for its rate."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from sqlalchemy import select

from profilekit.api.auth import find_key
from profilekit.api.limits import RowRateLimit
from profilekit.store.models import ApiKey


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def refused(limit: RowRateLimit, key: str, rows: int, rate: float | None = None) -> HTTPException:
    with pytest.raises(HTTPException) as caught:
        limit.take(key, rows, rate)
    return caught.value


def test_a_bucket_refills_at_its_rate_and_says_when_to_retry():
    clock = Clock()
    limit = RowRateLimit(default_rate=10.0, burst_seconds=1.0, clock=clock)
    limit.take("k", 10)  # a full bucket: 10 rows at once
    empty = refused(limit, "k", 1)
    assert empty.status_code == 429 and empty.headers["Retry-After"] == "1"
    assert "10 rows/s" in empty.detail and "bursts of 10 rows" in empty.detail
    limit.take("other", 10)  # every key has its own bucket
    clock.now += 0.5
    limit.take("k", 5)  # half a second refills 5 rows
    assert refused(limit, "k", 1).status_code == 429
    clock.now += 10
    limit.take("k", 25)  # larger than the bucket: admitted when full, leaving it 15 rows in debt
    assert refused(limit, "k", 1).headers["Retry-After"] == "2"  # 16 rows at 10 rows/s
    clock.now += 1.7  # 17 rows refilled: the debt and one row
    limit.take("k", 1)


def test_a_keys_own_rate_overrides_the_default_and_no_limit_admits_everything():
    limit = RowRateLimit(default_rate=None, burst_seconds=1.0, clock=Clock())
    for _ in range(100):
        limit.take("unlimited", 1000)
    limit.take("own", 2, rate=2.0)
    assert "2 rows/s" in refused(limit, "own", 1, rate=2.0).detail


def test_a_key_limited_from_the_command_line_gets_429_with_retry_after(server, cli, capsys):
    items = {"items": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}
    with server.runtime.sessions() as session:
        client_id = find_key(session, server.client).id
    assert cli(["keys", "limit", client_id, "--rows-per-second", "0"]) == 2  # refused, naming the field
    assert "rows_per_second must be above 0" in capsys.readouterr().err
    assert cli(["keys", "limit", client_id, "--rows-per-second", "2"]) == 0  # a bucket of 2 rows/s × 2 s
    assert "2 rows/s" in capsys.readouterr().out
    with server.http(server.client) as http:
        first = http.post("/v1/predict", json=items)
        second = http.post("/v1/predict", json=items)
    with server.http(server.other_client) as other:  # another key keeps its own (unlimited) rate
        unaffected = [other.post("/v1/predict", json=items).status_code for _ in range(3)]
    assert first.status_code == 200 and unaffected == [200, 200, 200]
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    assert "rate limit" in second.json()["detail"] and "2 rows/s" in second.json()["detail"]

    assert cli(["keys", "list"]) == 0
    assert "rows/s" in capsys.readouterr().out
    assert cli(["keys", "limit", client_id, "--rows-per-second", "default"]) == 0  # back to the server's: none
    capsys.readouterr()
    with server.http(server.client) as http:
        assert http.post("/v1/predict", json=items).status_code == 200


def test_a_key_created_with_a_limit_over_the_api_shows_it(server):
    with server.http(server.admin) as admin:
        made = admin.post("/v1/keys", json={"tenant": "acme", "rows_per_second": 50})
        bad = admin.post("/v1/keys", json={"tenant": "acme", "rows_per_second": -1})
    assert made.status_code == 201 and made.json()["rows_per_second"] == 50
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "rows_per_second"]


def test_an_endless_rate_is_refused_not_stored_unlimited_and_listed_as_the_default(server, cli, capsys):
    # JSON's 1e999 parses as infinity: stored, the key would send without limit while /v1/keys shows its
    # rows_per_second as null, the server's default (JSON has no infinity)
    with server.http(server.admin) as admin:
        endless = admin.post("/v1/keys", content='{"tenant": "acme", "rows_per_second": 1e999}',
                             headers={"Content-Type": "application/json"})
    assert endless.status_code == 422 and "rows_per_second is inf" in endless.json()["detail"][0]["msg"]
    with server.runtime.sessions() as session:
        client_id = find_key(session, server.client).id
    assert cli(["keys", "limit", client_id, "--rows-per-second", "inf"]) == 2
    assert "rows_per_second must be above 0 and finite" in capsys.readouterr().err
    assert cli(["keys", "create", "--rows-per-second", "inf"]) == 2
    with server.runtime.sessions() as session:
        assert session.scalars(select(ApiKey.rows_per_second).where(ApiKey.rows_per_second.is_not(None))).all() == []


def test_a_tiny_rate_asks_for_a_day_at_most_and_never_fails():
    limit = RowRateLimit(default_rate=None, burst_seconds=2.0, clock=Clock())
    limit.take("k", 1, rate=1e-320)  # a full bucket admits one request
    tiny = refused(limit, "k", 1, rate=1e-320)  # its wait overflows a float
    assert tiny.status_code == 429 and tiny.headers["Retry-After"] == "86400"


def test_an_infinite_or_nan_limit_is_refused_by_the_command_line(server, cli, capsys):
    with server.runtime.sessions() as session:
        client_id = find_key(session, server.client).id
    for value in ("inf", "1e400", "nan"):
        assert cli(["keys", "limit", client_id, "--rows-per-second", value]) == 2
        assert "rows_per_second must be above 0 and finite" in capsys.readouterr().err
    with server.http(server.admin) as admin:
        assert all(k["rows_per_second"] is None for k in admin.get("/v1/keys").json())
