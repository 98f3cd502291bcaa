"""A bad job never replaces a good model (#13): training settings are refused up front over HTTP, in the
library and on the command line; every artifact of a profile is kept, listed and can be promoted back;
`if_not_worse` keeps the current artifact; a profile deleted mid-job is skipped, the others are stored."""

from __future__ import annotations

import json
import threading
import time

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from profilekit.store.models import Job, Profile
from tests.api.test_api import JSONL, onboard
from tests.workers.conftest import sessions  # noqa: F401  (fixture)

BAD_SETTINGS = [({"epochs": -1}, "epochs"), ({"epochs": "ten"}, "epochs"), ({"epochs": 1_000_000}, "epochs"),
                ({"holdout_fraction": 5}, "holdout_fraction"), ({"batch_size": 0}, "batch_size")]


def job_of(server, http, ids, *, train=None, promotion=None, method="head_only", **hyper) -> dict:
    """Queue a job over HTTP and run it as a worker would; returns the finished job as the API shows it."""
    body = {"profile_ids": list(ids), "method": method, "hyperparameters": hyper, "train": train or {"epochs": 1}}
    answer = http.post("/v1/jobs", json=body | ({"promotion": promotion} if promotion else {}))
    assert answer.status_code == 202, answer.text
    server.run_queued_jobs()
    return http.get(f"/v1/jobs/{answer.json()['id']}").json()


def predict(http, profile_id: str) -> dict:
    answer = http.post("/v1/predict", json={"items": [{"profile_id": profile_id, "text": "senate vote on the bill"}]})
    assert answer.status_code == 200, answer.text
    return answer.json()["results"][0]


def test_out_of_bounds_training_settings_are_refused_and_change_nothing(server):
    with server.http(server.client) as http:
        pid = onboard(http, "ann")["ann"]
        job_of(server, http, [pid])
        before = predict(http, pid)
        for train, field in BAD_SETTINGS + [({"holdout_fraction": 0.3, "nope": 1}, "nope")]:
            answer = http.post("/v1/jobs", json={"profile_ids": [pid], "method": "head_only", "train": train})
            assert answer.status_code == 422, (train, answer.text)
            assert any(error["loc"][-2:] == ["train", field] for error in answer.json()["detail"]), answer.text
        for promotion, field in (({"policy": "sometimes"}, "policy"), ({"policy": "if_not_worse", "tolerance": 2},
                                                                        "tolerance")):
            answer = http.post("/v1/jobs", json={"profile_ids": [pid], "method": "head_only", "promotion": promotion})
            assert answer.status_code == 422 and any(e["loc"][-2:] == ["promotion", field]
                                                     for e in answer.json()["detail"]), answer.text
        assert len(http.get("/v1/jobs").json()) == 1  # only the good job was ever queued
        assert predict(http, pid) == before


def test_the_library_and_command_line_refuse_the_same_settings(sessions, tmp_path, monkeypatch, capsys):  # noqa: F811
    from profilekit.cli import main
    from profilekit.jobs import TrainConfig, create_training_jobs
    from profilekit.settings import get_settings
    from tests.workers.test_runner import add_profile

    with sessions() as session:
        profile = add_profile(session, "lib")
        for train, field in BAD_SETTINGS:
            with pytest.raises(ValidationError) as refused:
                create_training_jobs(session, profile_ids=[profile.id], method="head_only", pool=None, train=train)
            assert refused.value.errors()[0]["loc"] == (field,)
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    with pytest.raises(ValidationError, match="epochs"):
        TrainConfig(epochs=-1)

    rows = tmp_path / "authors.jsonl"
    rows.write_text("\n".join(f'{{"text": "story {i}", "category": "{("a", "b")[i % 2]}", "author": "cli"}}'
                              for i in range(12)))
    monkeypatch.setenv("PROFILEKIT_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.delenv("PROFILEKIT_DATABASE_URL", raising=False)
    monkeypatch.delenv("PROFILEKIT_BROKER_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["onboard", str(rows), "--epochs", "-1", "--no-worker"]) == 2
        assert "epochs" in capsys.readouterr().err
        assert main(["--url", "http://127.0.0.1:9", "onboard", str(rows), "--epochs", "0"]) == 2  # before any call
        assert "epochs" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
    assert not (tmp_path / "cli-data" / "profilekit.sqlite").exists()  # nothing stored, not even the profile


def test_every_artifact_is_kept_and_an_earlier_one_can_be_promoted_back(server, capsys):
    from profilekit.cli import main

    with server.http(server.client) as http, server.http(server.other_client) as other, \
            server.http(server.admin) as admin:
        pid = onboard(http, "bo")["bo"]
        first_job = job_of(server, http, [pid])
        first = predict(http, pid)
        second_job = job_of(server, http, [pid], head_lr=0.5)
        second = predict(http, pid)
        assert second_job["result"]["profiles"][0]["promoted"] is True
        versions = http.get(f"/v1/profiles/{pid}/artifacts").json()
        assert [v["job_id"] for v in versions] == [second_job["id"], first_job["id"]]  # newest first
        assert [v["current"] for v in versions] == [True, False]
        assert versions[0]["id"] == second["artifact_version"] != first["artifact_version"] == versions[1]["id"]
        for version in versions:
            assert version["method"] == "head_only" and version["stored_bytes"] > 0
            assert 0 <= version["metrics"]["accuracy"] <= 1 and version["created_at"]

        assert other.get(f"/v1/profiles/{pid}/artifacts").status_code == 404  # another tenant
        assert other.post(f"/v1/profiles/{pid}/artifacts/{versions[1]['id']}/promote").status_code == 404
        stranger = onboard(http, "cy")["cy"]
        assert http.post(f"/v1/profiles/{stranger}/artifacts/{versions[1]['id']}/promote").status_code == 404

        promoted = http.post(f"/v1/profiles/{pid}/artifacts/{versions[1]['id']}/promote")
        assert promoted.status_code == 200 and promoted.json()["artifact"]["id"] == versions[1]["id"]
        assert predict(http, pid) == first  # served with the earlier artifact at once, scores and all
        assert [v["current"] for v in http.get(f"/v1/profiles/{pid}/artifacts").json()] == [False, True]
        assert admin.post(f"/v1/profiles/{pid}/artifacts/{versions[0]['id']}/promote").status_code == 200
        assert predict(http, pid) == second
        # the command line, through the client: list, then roll back again
        capsys.readouterr()
        assert main(["--url", server.url, "--api-key", server.client, "artifacts", pid, "--promote",
                     versions[1]["id"]]) == 0
        listed = capsys.readouterr().out.splitlines()
        rows = {line.split()[0]: line for line in listed if line.split()[0] in (versions[0]["id"], versions[1]["id"])}
        assert rows[versions[1]["id"]].split()[1] == "*" and rows[versions[0]["id"]].split()[1] == second_job["id"]
        assert predict(http, pid) == first


def rows(flipped: bool = False) -> str:
    """Ten rows a head learns at once (one word tells the label); flipped: the same texts, labels swapped."""
    labels = {"sports": "politics", "politics": "sports"} if flipped else {"sports": "sports", "politics": "politics"}
    return "\n".join(json.dumps({"text": f"{word} story {i}", "category": labels[topic]})
                     for topic, word in (("sports", "match"), ("politics", "senate")) for i in range(5))


def test_if_not_worse_keeps_the_current_artifact_and_says_why(server):
    with server.http(server.client) as http:
        pid = http.post("/v1/profiles", json={"external_id": "dee"}).json()["id"]
        http.post(f"/v1/profiles/{pid}/examples", content=rows(), headers=JSONL).raise_for_status()
        good = job_of(server, http, [pid], train={"epochs": 30, "patience": 30}, head_lr=0.1)
        good_accuracy = good["result"]["profiles"][0]["accuracy"]
        before = predict(http, pid)
        # a bad upload: every text again with the other label; no model scores well on its holdout
        http.post(f"/v1/profiles/{pid}/examples", content=rows(flipped=True), headers=JSONL).raise_for_status()
        bad = job_of(server, http, [pid], promotion={"policy": "if_not_worse", "tolerance": 0.1})
        [outcome] = bad["result"]["profiles"]
        assert outcome["accuracy"] < good_accuracy - 0.1, f"the test's bad job must score lower: {good}, {bad}"
        assert bad["state"] == "succeeded" and outcome["promoted"] is False
        assert outcome["current_artifact_id"] == before["artifact_version"] != outcome["artifact_id"]
        assert "kept the current artifact" in outcome["reason"] and outcome["previous_accuracy"] == good_accuracy
        assert predict(http, pid) == before
        versions = http.get(f"/v1/profiles/{pid}/artifacts").json()
        assert [(v["id"], v["current"]) for v in versions] == [(outcome["artifact_id"], False),
                                                                (before["artifact_version"], True)]
        # the default policy (always) replaces it
        again = job_of(server, http, [pid])
        assert again["result"]["profiles"][0]["promoted"] is True
        assert predict(http, pid)["artifact_version"] == again["result"]["profiles"][0]["artifact_id"]


def test_a_profile_deleted_while_its_job_trains_is_skipped_and_the_others_are_stored(server):
    from profilekit.runner import run_job
    from profilekit.serving import EngineCache

    with server.http(server.client) as http:
        ids = onboard(http, "fay", "gus")
        keep, victim = ids["fay"], ids["gus"]
        answer = http.post("/v1/jobs", json={"profile_ids": [keep, victim], "method": "head_only",
                                             "hyperparameters": {"head_lr": 1e-6},
                                             "train": {"epochs": 400, "patience": 100, "batch_size": 2}})
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.setdefault("state", run_job(
            job_id, sessions=server.runtime.sessions, cache=EngineCache(server.runtime.settings))))
        worker.start()
        deadline = time.monotonic() + 120
        while http.get(f"/v1/jobs/{job_id}").json()["progress"].get("step", 0) == 0:
            assert time.monotonic() < deadline and worker.is_alive(), "the job never started training"
            time.sleep(0.2)
        assert http.delete(f"/v1/profiles/{victim}").status_code == 204
        assert http.get(f"/v1/jobs/{job_id}").json()["state"] == "running"  # deleted mid-training
        worker.join(300)
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert outcome["state"] == "succeeded" and job["state"] == "succeeded", job["error"]
        assert job["result"]["skipped"] == [{"id": victim, "reason": "deleted while the job trained"}]
        assert [p["id"] for p in job["result"]["profiles"]] == [keep]
        assert http.get(f"/v1/profiles/{keep}").json()["artifact"]["id"] == job["result"]["profiles"][0]["artifact_id"]
        assert predict(http, keep)["label"] in ("politics", "sports")
        assert http.get(f"/v1/profiles/{victim}").status_code == 404
    with server.runtime.sessions() as session:
        assert session.get(Profile, victim) is None
