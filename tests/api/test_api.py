"""The HTTP API through real HTTP: what a newcomer and an operator do, and what they must be refused."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from profilekit.store.models import Artifact, Example
from tests.conftest import NEWS, REPO, SHARED
from tests.engine.test_training import profile as synthetic

JSONL = {"Content-Type": "application/x-ndjson"}


def author_rows(*authors, n=5):
    rows = []
    for seed, author in enumerate(authors):
        data = synthetic(author, n, seed=seed)
        rows += [{"text": t, "category": c, "author": author} for t, c in zip(data.texts, data.labels)]
    return rows


def jsonl(rows) -> str:
    return "\n".join(json.dumps(r) for r in rows)


def onboard(http, *authors):
    answer = http.post("/v1/datasets", content=jsonl(author_rows(*authors)), headers=JSONL)
    assert answer.status_code == 200, answer.text
    return {p["external_id"]: p["id"] for p in answer.json()["profiles"]}


def train(server, http, ids, **hyper):
    answer = http.post("/v1/jobs", json={"profile_ids": list(ids), "method": "xpeft_hard",
                                         "hyperparameters": {"k": 3} | hyper, "train": {"epochs": 2}})
    assert answer.status_code == 202, answer.text
    assert server.run_queued_jobs() == ["succeeded"]
    return answer.json()["id"]


def test_keys_roles_and_tenants(server):
    with server.http() as anonymous:
        assert anonymous.get("/v1/profiles").status_code == 401
    with server.http("pk_not_a_key") as bad:
        assert bad.get("/v1/profiles").status_code == 401
    with server.http(server.client) as acme, server.http(server.other_client) as globex:
        created = acme.post("/v1/profiles", json={"external_id": "reader-1"})
        assert created.status_code == 201
        pid = created.json()["id"]
        assert created.json()["status"] == "new" and created.json()["tenant"] == "acme"
        assert acme.post("/v1/profiles", json={"external_id": "reader-1"}).status_code == 409
        assert globex.get(f"/v1/profiles/{pid}").status_code == 404  # another tenant's profile is unknown
        assert globex.post("/v1/predict", json={"items": [{"profile_id": pid, "text": "x"}]}).status_code == 404
        assert pid not in [p["id"] for p in globex.get("/v1/profiles").json()["items"]]
        assert acme.get("/dashboard").text.count("This needs an admin key") == 1
    with server.http(server.admin) as admin:
        assert admin.get(f"/v1/profiles/{pid}").status_code == 200


def test_bulk_upload_train_and_predict_mixed_profiles(server):
    with server.http(server.client) as http:
        ids = onboard(http, "ann", "bo", "cy")
        assert set(ids) == {"ann", "bo", "cy"}
        untrained = http.post("/v1/predict", json={"items": [{"profile_id": ids["ann"], "text": "x"}]})
        assert untrained.status_code == 409 and "queued" not in untrained.text  # no job yet: state new
        assert '"state":"new"' in untrained.text.replace(" ", "")
        job_id = train(server, http, ids.values())
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] == "succeeded" and job["kind"] == "train" and job["progress"]["step"] >= 1
        kinds = [e["kind"] for e in http.get(f"/v1/jobs/{job_id}/events").json()]
        assert kinds[0] == "state" and "progress" in kinds and kinds[-1] == "state"
        profile = http.get(f"/v1/profiles/{ids['ann']}").json()
        assert profile["status"] == "ready" and profile["examples"] == 10
        assert profile["artifact"]["method"] == "xpeft_hard" and 0 <= profile["artifact"]["metrics"]["accuracy"] <= 1
        items = [{"profile_id": ids["ann"], "text": "senate vote bill"}, {"profile_id": ids["bo"], "text": "goal"},
                 {"text": "no profile"}, {"profile_id": ids["ann"], "text": "match team final"}]
        answer = http.post("/v1/predict", json={"items": items})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["profile_id"] for r in results] == [ids["ann"], ids["bo"], None, ids["ann"]]
        assert results[0]["artifact_version"] == profile["artifact"]["id"]
        assert results[0]["label"] in ("politics", "sports") and abs(sum(results[0]["scores"].values()) - 1) < 1e-5
        assert results[2]["label"] is None and results[2]["artifact_version"] is None
        unknown = http.post("/v1/predict", json={"items": [{"profile_id": ids["ann"], "text": "x"},
                                                           {"profile_id": "nope-1", "text": "x"},
                                                           {"profile_id": "nope-2", "text": "y"}]})
        assert unknown.status_code == 404
        assert unknown.json()["detail"]["unknown_profile_ids"] == ["nope-1", "nope-2"]


def test_retrained_profile_is_served_with_its_new_artifact(server):
    with server.http(server.client) as http:
        ids = onboard(http, "dee")
        train(server, http, ids.values())
        first = http.post("/v1/predict", json={"items": [{"profile_id": ids["dee"], "text": "vote"}]}).json()
        train(server, http, ids.values(), lr=0.05)
        second = http.post("/v1/predict", json={"items": [{"profile_id": ids["dee"], "text": "vote"}]}).json()
        current = http.get(f"/v1/profiles/{ids['dee']}").json()["artifact"]["id"]
        assert first["results"][0]["artifact_version"] != second["results"][0]["artifact_version"] == current


def test_bad_upload_is_refused_whole_with_row_numbers(server):
    with server.http(server.client) as http:
        rows = author_rows("eve")
        rows[2]["text"] = ""
        rows[4].pop("category")
        bad = "\n".join(json.dumps(r) for r in rows[:6]) + "\n{broken\n"
        answer = http.post("/v1/datasets", content=bad, headers=JSONL)
        assert answer.status_code == 422
        errors = answer.json()["errors"]
        assert [e["row"] for e in errors] == [3, 5, 7]
        assert "text" in errors[0]["reason"] and "category" in errors[1]["reason"] and "JSON" in errors[2]["reason"]
        assert http.get("/v1/profiles").json()["items"] == []  # nothing of it was stored
        csv = "text,category\nfine text,POLITICS\n,SPORTS\n"
        pid = http.post("/v1/profiles", json={}).json()["id"]
        answer = http.post(f"/v1/profiles/{pid}/examples", content=csv, headers={"Content-Type": "text/csv"})
        assert answer.status_code == 422
        assert answer.json()["errors"] == [{"row": 3, "reason": "text is missing or empty"}]
        with server.runtime.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Example)) == 0
        wrong = http.post(f"/v1/profiles/{pid}/examples", content="a,b", headers={"Content-Type": "image/png"})
        assert wrong.status_code == 422 and "unsupported content type" in wrong.text


def test_one_profile_uploads_in_each_format(server):
    with server.http(server.client) as http:
        pid = http.post("/v1/profiles", json={"labels": ["POLITICS", "SPORTS"]}).json()["id"]
        as_json = http.post(f"/v1/profiles/{pid}/examples",
                            json={"examples": [{"text": "a", "category": "POLITICS"}]})
        as_csv = http.post(f"/v1/profiles/{pid}/examples", content="text,category\nb,SPORTS\n",
                           headers={"Content-Type": "text/csv"})
        as_jsonl = http.post(f"/v1/profiles/{pid}/examples", content='{"text": "c", "category": "SPORTS"}',
                             headers=JSONL)
        assert [r.status_code for r in (as_json, as_csv, as_jsonl)] == [200, 200, 200]
        outside = http.post(f"/v1/profiles/{pid}/examples", json=[{"text": "d", "category": "FOOD"}])
        assert outside.status_code == 422 and "label set" in outside.text
        assert http.get(f"/v1/profiles/{pid}").json()["examples"] == 3


def test_upload_size_limit_is_enforced_while_streaming(server):
    limit = server.runtime.settings.max_upload_bytes
    with server.http(server.client) as http:
        def chunks():  # no Content-Length: the server must count as the body arrives
            line = (json.dumps({"text": "x" * 900, "category": "A", "author": "big"}) + "\n").encode()
            for _ in range(limit // len(line) + 10):
                yield line

        answer = http.post("/v1/datasets", content=chunks(), headers=JSONL)
        assert answer.status_code == 413 and str(limit) in answer.text
        declared = http.post("/v1/datasets", content=b"x" * (limit + 1), headers=JSONL)
        assert declared.status_code == 413
        assert http.get("/v1/profiles").json()["items"] == []


def test_news_authors_and_lamp2_pair_upload(server):
    with server.http(server.client) as http:
        body = NEWS.read_bytes()[:150_000]
        body = body[: body.rfind(b"\n")]
        answer = http.post("/v1/datasets?min_rows=5", content=body, headers=JSONL)
        assert answer.status_code == 200, answer.text
        assert all(p["rows"] >= 5 for p in answer.json()["profiles"]) and len(answer.json()["profiles"]) >= 5
        sample = SHARED / "data" / "lamp2-format-sample"
        files = {"questions": ("q.json", (sample / "LaMP_22_dev_questions.json").read_bytes()),
                 "outputs": ("o.json", (sample / "LaMP_22_dev_outputs.json").read_bytes())}
        lamp = http.post("/v1/datasets", files=files)  # the default min_rows (10) keeps one of its three users
        assert lamp.status_code == 200, lamp.text
        assert [p["external_id"] for p in lamp.json()["profiles"]] == ["lamp-112"]
        assert lamp.json()["skipped_authors"] == 2
        lamp = http.post("/v1/datasets?min_rows=3", files=files)
        questions = json.loads((sample / "LaMP_22_dev_questions.json").read_text())
        assert {p["external_id"] for p in lamp.json()["profiles"]} == {f"lamp-{q['id']}" for q in questions}
        broken = http.post("/v1/datasets", files={"questions": ("q.json", b"[{\"nope\": 1}]")})
        assert broken.status_code == 422
        for task, items in (("LaMP_1", 4), ("LaMP_2", 5), ("LaMP_3", 6)):  # every LaMP classification task
            folder = REPO / "tests" / "data" / "lamp"
            files = {"questions": ("q.json", (folder / f"{task}_dev_questions.json").read_bytes()),
                     "outputs": ("o.json", (folder / f"{task}_dev_outputs.json").read_bytes())}
            answer = http.post("/v1/datasets?min_rows=1", files=files)
            assert answer.status_code == 200, answer.text
            # LaMP_1: the author's own papers and as many of other authors' papers (labelled mine / other)
            assert {p["rows"] for p in answer.json()["profiles"]} == {2 * items if task == "LaMP_1" else items}


def test_a_job_refuses_up_front_the_profiles_it_cannot_train(server):
    with server.http(server.client) as http:
        ids = onboard(http, "ivy")
        small = http.post("/v1/profiles", json={"external_id": "small"}).json()["id"]
        http.post(f"/v1/profiles/{small}/examples", content="text,category\na,X\nb,Y\nc,X\n",
                  headers={"Content-Type": "text/csv"}).raise_for_status()
        empty = http.post("/v1/profiles", json={"external_id": "empty"}).json()["id"]
        answer = http.post("/v1/jobs", json={"profile_ids": [ids["ivy"], small, empty], "method": "head_only"})
        assert answer.status_code == 422, answer.text
        refused = answer.json()["detail"]["profiles"]
        assert [(p["id"], p["rows"]) for p in refused] == [(small, 3), (empty, 0)]
        assert "at least 10" in refused[0]["reason"] and small in answer.json()["detail"]["message"]
        assert http.get("/v1/jobs").json() == []  # nothing was queued
        lowered = http.post("/v1/jobs", json={"profile_ids": [small], "method": "head_only",
                                              "train": {"min_rows": 3}})
        assert lowered.status_code == 202, lowered.text


def test_idempotency_key_cancel_and_listing(server):
    with server.http(server.client) as http:
        ids = list(onboard(http, "fay", "gus").values())
        body = {"profile_ids": ids, "method": "head_only", "train": {"epochs": 1}}
        first = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
        again = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
        other = http.post("/v1/jobs", json=body | {"method": "xpeft_soft"}, headers={"Idempotency-Key": "k-1"})
        assert other.status_code == 422 and "different request" in other.text
        bad = http.post("/v1/jobs", json=body | {"hyperparameters": {"no_such_field": 1}})
        assert bad.status_code == 422
        unknown = http.post("/v1/jobs", json=body | {"method": "nope"})
        assert unknown.status_code == 422 and "unknown method" in unknown.text
        for asked in ({"head": "shared"}, {"head_delta_rank": 1}):  # the default random pool has no shared head
            shared = http.post("/v1/jobs", json=body | {"method": "xpeft_hard", "hyperparameters": asked | {"k": 3}})
            assert shared.status_code == 422 and "shared head" in shared.text, shared.text
        nearest = http.post("/v1/jobs", json=body | {"method": "xpeft_hard", "hyperparameters": {"mask_init": "nearest",
                                                                                             "k": 3}})
        assert nearest.status_code == 422 and "mask_init='nearest' needs a warm pool" in nearest.text, nearest.text
        cancelled = http.post(f"/v1/jobs/{first.json()['id']}/cancel").json()
        assert cancelled["state"] == "cancelled"
        assert [j["id"] for j in http.get("/v1/jobs?state=cancelled").json()] == [first.json()["id"]]
        assert http.get("/v1/jobs?state=queued").json() == []


def test_pagination_and_delete(server):
    with server.http(server.client) as http:
        ids = onboard(http, *[f"author-{i}" for i in range(5)])
        seen, cursor = [], None
        while True:
            page = http.get("/v1/profiles", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids.values()) and len(seen) == 5
        victim = ids["author-0"]
        train(server, http, [victim])
        assert http.delete(f"/v1/profiles/{victim}").status_code == 204
        assert http.get(f"/v1/profiles/{victim}").status_code == 404
        with server.runtime.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Artifact).where(Artifact.profile_id == victim)) == 0
            assert session.scalar(select(func.count()).select_from(Example).where(Example.profile_id == victim)) == 0


def test_full_batcher_queue_answers_429(server):
    batcher = server.runtime.serving.batcher
    with server.http(server.client) as http:
        original, batcher.max_queue_rows = batcher.max_queue_rows, 2
        try:
            answer = http.post("/v1/predict", json={"items": [{"text": "a"}, {"text": "b"}, {"text": "c"}]})
        finally:
            batcher.max_queue_rows = original
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"


def test_health_readiness_and_metrics(server):
    with server.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz").json()
        assert ready["ready"] is True and set(ready["checks"]) == {"database", "broker", "model"}
    with server.http(server.client) as http:
        onboard(http, "hal")
        http.post("/v1/predict", json={"items": [{"text": "plain row"}]})
        metrics = http.get("/metrics").text
    for name in ("profilekit_http_requests_total", "profilekit_http_request_seconds_bucket", "profilekit_batch_rows",
                 "profilekit_batcher_queued_rows", "profilekit_jobs", "profilekit_profiles 1.0",
                 "profilekit_artifact_bytes"):
        assert name in metrics, name


def test_keys_command_prints_a_working_key_once(server, cli, capsys):
    assert cli(["keys", "create", "--tenant", "acme", "--role", "client"]) == 0
    key = capsys.readouterr().out.strip()
    with server.http(key) as http:
        assert http.get("/v1/profiles").status_code == 200
