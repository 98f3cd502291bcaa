"""Warm pools as an operator builds them: from a tenant's profiles with the most data, as a job with
progress, made the tenant's default so its next jobs train on it, listed with what built them."""

from __future__ import annotations

from profilekit.store.models import Artifact, Pool, Profile
from tests.api.test_api import JSONL, author_rows, jsonl


def test_a_tenants_warm_pool_becomes_the_pool_its_jobs_train_on(server):
    client, admin = server.http(server.client), server.http(server.admin)
    rows = author_rows("big", "bigger", "small", "newcomer", n=5)
    rows += author_rows("biggest", n=8)
    client.post("/v1/datasets", content=jsonl(rows), headers=JSONL).raise_for_status()
    ids = {p["external_id"]: p["id"] for p in client.get("/v1/profiles").json()["items"]}

    assert client.post("/v1/pools", json={"largest": 3}).status_code == 403  # operators build pools
    both = admin.post("/v1/pools", json={"largest": 3, "profile_ids": [ids["big"], ids["small"]]})
    assert both.status_code == 422 and "either profile_ids or largest" in both.text
    lonely = admin.post("/v1/pools", json={"largest": 3, "tenant": "nobody-here"})
    assert lonely.status_code == 422 and "needs two" in lonely.text

    job = admin.post("/v1/pools", json={"largest": 3, "tenant": "acme", "name": "acme v1", "set_default": True,
                                        "reduction_factor": 4, "train": {"epochs": 1}})
    assert job.status_code == 202, job.text
    assert job.json()["kind"] == "build_pool" and job.json()["profile_ids"][0] == ids["biggest"]
    assert server.run_queued_jobs() == ["succeeded"]
    built = client.get(f"/v1/jobs/{job.json()['id']}").json()
    assert built["state"] == "succeeded" and built["progress"]["step"] >= 1  # its training reported progress

    [pool] = client.get("/v1/pools").json()  # the client sees its tenant's pool
    assert pool["pool_hash"] == built["progress"]["pool_hash"] and pool["default_for"] == ["acme"]
    assert pool["name"] == "acme v1" and pool["source"] == "warm" and pool["num_adapters"] == 3
    assert pool["built_from"] == job.json()["profile_ids"] and pool["tenant"] == "acme"
    assert server.http(server.other_client).get("/v1/pools").json() == []  # another tenant's pool is private
    pools_table = admin.get("/dashboard").text.split("id='pools'")[1].split("</table>")[0]
    assert "acme v1" in pools_table and "3 profiles: biggest, " in pools_table  # what built it, by name

    too_many = client.post("/v1/jobs", json={"profile_ids": [ids["newcomer"]], "method": "xpeft_hard",
                                             "hyperparameters": {"k": 5}})  # refused up front, not failed later
    assert too_many.status_code == 422 and "k=5 exceeds the pool's N=3" in too_many.text, too_many.text
    training = client.post("/v1/jobs", json={"profile_ids": [ids["newcomer"]], "method": "xpeft_hard",
                                             "train": {"epochs": 1}})  # the defaults fit a pool of three
    assert training.json()["params"]["pool"] == pool["pool_hash"]  # the tenant's default
    assert server.run_queued_jobs() == ["succeeded"]
    profile = client.get(f"/v1/profiles/{ids['newcomer']}").json()
    assert profile["artifact"]["pool_hash"] == pool["pool_hash"]
    answer = client.post("/v1/predict", json={"items": [{"profile_id": ids["newcomer"], "text": "the senate vote"}]})
    assert answer.status_code == 200 and answer.json()["results"][0]["label"] in ("politics", "sports")

    back = admin.put("/v1/pools/default", json={"pool_hash": None, "tenant": "acme"})
    assert back.status_code == 200 and all(not p["default_for"] for p in back.json())
    again = client.post("/v1/jobs", json={"profile_ids": [ids["newcomer"]], "method": "xpeft_hard",
                                          "hyperparameters": {"k": 2}, "train": {"epochs": 1}})
    assert again.json()["params"]["pool"] == "random-12"
    unknown = admin.put("/v1/pools/default", json={"pool_hash": "f" * 64})
    assert unknown.status_code == 404


def test_a_replica_that_cannot_read_a_pools_stored_bytes_answers_503_not_the_clients_422(server):
    profile, _ = server.trained_profile("stored-pool", "xpeft_hard", {"k": 4})
    with server.runtime.sessions() as session:
        pool_hash = session.get(Artifact, session.get(Profile, profile).current_artifact_id).pool_hash
        session.get(Pool, pool_hash).uri = f"db://pools/{pool_hash}"  # as if its chunks were lost
        session.commit()
    answer = server.http(server.client).post("/v1/predict", json={"items": [{"profile_id": profile, "text": "a vote"}]})
    assert answer.status_code == 503, answer.text  # the replica's store failed, not the request
    assert f"pool db://pools/{pool_hash} has no chunks" in answer.json()["detail"]
