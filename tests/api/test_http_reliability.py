"""The HTTP items of issue #13 over real HTTP: idempotency keys are a tenant's own, every body is
bounded, strings no store would keep are refused on every database, small 422s (a long refused value comes
back cut), one timestamp format,
uploads off the event loop, abandoned predictions never computed."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

ROWS = [{"text": f"{word} story {i}", "category": topic}
        for topic, word in (("sports", "match"), ("politics", "senate")) for i in range(5)]


def onboard(http: httpx.Client, external_id: str) -> str:
    profile = http.post("/v1/profiles", json={"external_id": external_id}).json()["id"]
    http.post(f"/v1/profiles/{profile}/examples", content="\n".join(json.dumps(r) for r in ROWS),
              headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
    return profile


def test_idempotency_keys_are_scoped_by_tenant(server):
    body = {"method": "head_only", "train": {"epochs": 1}}
    with server.http(server.client) as acme, server.http(server.other_client) as globex:
        first = acme.post("/v1/jobs", json=body | {"profile_ids": [onboard(acme, "a")]},
                          headers={"Idempotency-Key": "nightly"})
        theirs = globex.post("/v1/jobs", json=body | {"profile_ids": [onboard(globex, "b")]},
                             headers={"Idempotency-Key": "nightly"})
        again = globex.post("/v1/jobs", json=body | {"profile_ids": [theirs.json()["profile_ids"][0]]},
                            headers={"Idempotency-Key": "nightly"})
    assert first.status_code == theirs.status_code == again.status_code == 202, theirs.text
    assert theirs.json()["id"] != first.json()["id"]  # globex's own job, nothing about acme's
    assert again.json()["id"] == theirs.json()["id"]  # and within globex the key still works


def test_every_body_is_bounded(server):
    limit = server.runtime.settings.max_json_bytes
    labels = [f"label-{i:07d}" for i in range(limit // 10)]  # well over the JSON limit
    with server.http(server.client) as http:
        big = http.post("/v1/profiles", json={"external_id": "big", "labels": labels})
        assert big.status_code == 413 and "limit" in big.json()["detail"]

        def chunks():  # no Content-Length: counted as it streams
            yield b'{"items": ['
            for _ in range(limit // 20):
                yield b'{"text": "a row of text to predict"},'
            yield b'{"text": "last"}]}'

        streamed = http.post("/v1/predict", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        assert http.get("/v1/profiles").json()["items"] == []  # nothing of "big"


@pytest.mark.parametrize("body, field", [
    ({"external_id": "many", "labels": [f"l{i}" for i in range(1001)]}, "labels"),
    ({"external_id": "long", "labels": ["x" * 201]}, "labels"),
    ({"external_id": "blank", "labels": ["  "]}, "labels"),
    ({"external_id": "nul\u0000id"}, "external_id"),
    ({"external_id": "nul-label", "labels": ["a\u0000b"]}, "labels[0]"),
])
def test_label_lists_and_nul_are_refused_naming_the_field(server, body, field):
    with server.http(server.client) as http:
        answer = http.post("/v1/profiles", json=body)
        assert answer.status_code == 422, answer.text
        assert field in answer.text
        assert http.get("/v1/profiles").json()["items"] == []  # nothing stored


def test_nul_in_predict_text_and_whitespace_text_are_422(server):
    with server.http(server.client) as http:
        nul = http.post("/v1/predict", json={"items": [{"text": "a\u0000b"}]})
        assert nul.status_code == 422 and "NUL" in nul.text and "items[0].text" in nul.text
        blank = http.post("/v1/predict", json={"items": [{"text": " \n\t "}]})
        assert blank.status_code == 422 and "whitespace" in blank.text


def test_a_misspelt_or_misplaced_field_is_a_422_naming_it_and_queues_nothing(server):
    """A setting the request does not have is refused, not dropped: a job told {"method_config": …} (the name
    its answer shows the settings under; the request's is "hyperparameters") would otherwise train on the
    defaults, and a predict row with {"profile": …} would be served without its profile."""
    with server.http(server.client) as http:
        profile = onboard(http, "reader")
        job = http.post("/v1/jobs", json={"profile_ids": [profile], "method": "xpeft_hard",
                                          "method_config": {"k": 5}})
        assert job.status_code == 422 and "method_config" in job.text and "not permitted" in job.text
        assert http.get("/v1/jobs").json() == []
        row = http.post("/v1/predict", json={"items": [{"profile": profile, "text": "Senate passes the budget"}]})
        assert row.status_code == 422 and "profile" in row.text and "not permitted" in row.text


def test_a_refused_long_value_is_not_sent_back_whole(server):
    """A 422 names the field and the rule; a 100,000-character text it refuses comes back as its start and its
    size, not as the payload again (a short refused value is still echoed as sent)."""
    with server.http(server.client) as http:
        answer = http.post("/v1/predict", json={"items": [{"text": "x" * 100_000}]})
        short = http.post("/v1/predict", json={"items": [{"text": "a"}], "timeout_ms": -5})
    assert answer.status_code == 422 and len(answer.content) < 2_000, len(answer.content)
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "items", 0, "text"] and "at most" in error["msg"]
    assert error["input"].startswith('"xxx') and error["input"].endswith("(100,000 characters)")
    assert short.status_code == 422 and short.json()["detail"][0]["input"] == -5


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_a_number_beyond_any_float_is_a_422_naming_the_field(server, number):
    # valid JSON that Python reads as ±infinity: the 422 echoes it, and JSON has no infinity to write
    body = f'{{"items": [{{"text": "a"}}], "timeout_ms": {number}}}'
    with server.http(server.client) as http:
        answer = http.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert "timeout_ms is" in answer.json()["detail"][0]["msg"] and "not a finite number" in answer.text


def test_unknown_job_state_and_empty_lamp_questions_are_422(server):
    with server.http(server.client) as http:
        bogus = http.get("/v1/jobs", params={"state": "bogus"})
        assert bogus.status_code == 422 and "state" in bogus.text
        assert http.get("/v1/jobs", params={"state": "queued"}).status_code == 200
        empty = http.post("/v1/datasets", files={"questions": ("q.json", b"[]")})
        assert empty.status_code == 422, empty.text
        assert http.get("/v1/profiles").json()["items"] == []


def test_timestamps_are_utc_with_offset_on_post_and_get(server):
    with server.http(server.client) as http:
        profile = onboard(http, "when")
        created = http.post("/v1/jobs", json={"profile_ids": [profile], "method": "head_only",
                                               "train": {"epochs": 1}}).json()
        server.run_queued_jobs()
        fetched = http.get(f"/v1/jobs/{created['id']}").json()
        stamps = [created["created_at"], fetched["created_at"], fetched["started_at"], fetched["finished_at"],
                  http.get(f"/v1/profiles/{profile}").json()["created_at"],
                  http.get(f"/v1/profiles/{profile}").json()["artifact"]["created_at"],
                  http.get(f"/v1/jobs/{created['id']}/events").json()[0]["at"]]
    assert all(s.endswith("Z") for s in stamps), stamps
    assert created["created_at"] == fetched["created_at"]


def test_a_predict_is_answered_while_a_large_upload_is_processed(server, monkeypatch):
    """The upload's parsing and inserts run in a worker thread: held inside the parser, the upload does
    not stop a prediction (with the work on the event loop, the predict would wait for the upload)."""
    from profilekit.api.services import uploads

    inside, release = threading.Event(), threading.Event()
    parse_rows = uploads.parse_rows

    def held_parse(*args, **kwargs):
        inside.set()
        release.wait(30)
        return parse_rows(*args, **kwargs)

    monkeypatch.setattr(uploads, "parse_rows", held_parse)
    body = "\n".join(json.dumps(r | {"author": f"writer-{i % 50}"}) for i, r in enumerate(ROWS * 200))
    answers = {}

    def upload():
        with server.http(server.client) as http:
            answers["upload"] = http.post("/v1/datasets?min_rows=3", content=body,
                                          headers={"Content-Type": "application/x-ndjson"})

    thread = threading.Thread(target=upload)
    thread.start()
    try:
        assert inside.wait(30)
        with server.http(server.client) as http:
            answers["predict"] = http.post("/v1/predict", json={"items": [{"text": "Lakers win again"}]}, timeout=20)
        assert "upload" not in answers  # the upload is still being processed
    finally:
        release.set()
        thread.join(60)
    assert answers["predict"].status_code == 200
    assert answers["upload"].status_code == 200 and answers["upload"].json()["rows"] == len(ROWS) * 200


def test_rows_of_a_client_that_left_are_never_computed(server):
    """Requests wait behind a forward held open; their clients give up after 0.5 s. Once the forward
    is let go, none of their rows is computed and /metrics counts them as dropped."""
    batcher = server.runtime.serving.batcher
    computed, release = [], threading.Event()
    run_batch = batcher.run_batch

    def held(rows):
        release.wait(30)
        computed.append(len(rows))
        return run_batch(rows)

    batcher.run_batch = held
    try:
        with server.http(server.client) as http, server.http(server.client) as other:
            first = threading.Thread(target=lambda: other.post("/v1/predict", json={"items": [{"text": "first"}]}))
            first.start()
            time.sleep(0.5)  # the first request is inside the held forward
            for _ in range(4):
                with pytest.raises(httpx.TimeoutException):
                    http.post("/v1/predict", json={"items": [{"text": f"row {i}"} for i in range(64)]}, timeout=0.5)
            deadline = http.post("/v1/predict", json={"items": [{"text": "late"}], "timeout_ms": 200}, timeout=5)
            time.sleep(0.5)  # the server sees the disconnects
            release.set()
            first.join(30)
            assert deadline.status_code == 504 or deadline.status_code == 429
            after = http.post("/v1/predict", json={"items": [{"text": "after"}]})
            assert after.status_code == 200
            metrics = http.get("/metrics").text
    finally:
        release.set()
        batcher.run_batch = run_batch
    assert computed[0] == 1 and sum(computed) == 2, computed  # "first", then "after": nothing of the others
    dropped = [line for line in metrics.splitlines() if line.startswith("profilekit_batcher_dropped_rows_total")]
    assert dropped and float(dropped[0].split()[-1]) >= 4 * 64, dropped
