"""The artifact cache of a served process: bounded by PROFILEKIT_ARTIFACT_CACHE_BYTES, pinned profiles
from PROFILEKIT_PINNED_PROFILES, and its figures on /metrics and the dashboard."""

from __future__ import annotations

import json
import re
from contextlib import closing

import pytest

from tests.api.conftest import serve


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def test_a_replica_keeps_its_pins_within_its_byte_budget_and_reports_it(server):
    from profilekit.api.runtime import Runtime
    from profilekit.serving.cache import state_bytes

    ids = [server.trained_profile(f"author-{i}")[0] for i in range(3)]
    size = state_bytes(server.runtime.serving.states(ids[:1])[ids[0]][0])  # head_only: every state alike
    settings = server.runtime.settings.model_copy(update={
        "pinned_profiles": ids[0], "artifact_cache_bytes": 2 * size + size // 2})  # the pin and one more
    with closing(serve(Runtime(settings), server.admin, server.client, server.other_client)) as replica:
        replica = next(replica)
        with replica.http(replica.client) as http:
            metrics = http.get("/metrics").text
            assert metric(metrics, "profilekit_cache_pinned_bytes") == size  # loaded at start-up
            assert metric(metrics, "profilekit_cache_budget_bytes") == settings.artifact_cache_bytes
            for pid in (ids[1], ids[2], ids[1], ids[0]):  # 2 evicts 1, 1 evicts 2, the pin stays
                answer = http.post("/v1/predict", json={"items": [{"profile_id": pid, "text": "a match"}]})
                assert answer.status_code == 200, answer.text
            metrics = http.get("/metrics").text
        expected = {"hits": 1, "misses": 4, "evictions": 2, "not_kept": 0, "resident_bytes": 2 * size,
                    "pinned_bytes": size, "entries": 2}  # misses: the pin's load at start-up and three
        suffix = {"hits": "_total", "misses": "_total", "evictions": "_total", "not_kept": "_total"}
        assert {k: metric(metrics, f"profilekit_cache_{k}{suffix.get(k, '')}") for k in expected} == expected
        with replica.http(replica.admin) as http:
            page = http.get("/dashboard").text
        assert re.search(r'id="cache-evictions">2<', page) and re.search(r'id="cache-pinned">1<', page)
        assert f"id='cache-budget' data-bytes='{settings.artifact_cache_bytes}'" in page


def test_a_replica_whose_pins_exceed_its_budget_refuses_to_start(server):
    from profilekit.errors import CacheBudgetError, ServingConfigError
    from profilekit.serving import Serving

    profile, _ = server.trained_profile("author")
    settings = server.runtime.settings.model_copy(update={"pinned_profiles": f"{profile}", "artifact_cache_bytes": 64})
    with pytest.raises(CacheBudgetError, match=f"profile {profile} cannot be pinned.*PROFILEKIT_ARTIFACT_CACHE_BYTES"):
        Serving(settings, server.runtime.sessions)
    unknown = settings.model_copy(update={"pinned_profiles": "nobody"})
    with pytest.raises(ServingConfigError, match="PROFILEKIT_PINNED_PROFILES names an unknown profile"):
        Serving(unknown, server.runtime.sessions)
    from profilekit.api.runtime import Runtime

    lazy = unknown.model_copy(update={"preload_model": False})  # the model (and pins) load on a first prediction
    with closing(serve(Runtime(lazy), server.admin, server.client, server.other_client)) as replica:
        with next(replica).http(server.client) as http:
            answer = http.post("/v1/predict", json={"items": [{"profile_id": profile, "text": "a match"}]})
    assert answer.status_code == 503 and "PROFILEKIT_PINNED_PROFILES" in answer.json()["detail"]  # not the client's


def test_a_pin_waits_for_its_training_and_moves_to_each_new_version(server):
    from profilekit.serving import Serving

    api = server.http(server.client)
    profile = api.post("/v1/profiles", json={"external_id": "later"}).json()["id"]
    settings = server.runtime.settings.model_copy(update={"pinned_profiles": f" {profile} ,"})
    serving = Serving(settings, server.runtime.sessions)  # untrained: starts, pinned once served
    try:
        assert serving.cache.pinned_profiles == {}
        rows = [{"text": f"{word} story {i}", "category": topic}
                for topic, word in (("sports", "match"), ("politics", "senate")) for i in range(5)]
        api.post(f"/v1/profiles/{profile}/examples", content="\n".join(json.dumps(r) for r in rows),
                 headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
        versions = []
        for _ in range(2):
            api.post("/v1/jobs", json={"profile_ids": [profile], "method": "head_only",
                                       "train": {"epochs": 1}}).raise_for_status()
            assert server.run_queued_jobs() == ["succeeded"]
            versions.append(serving.states([profile])[profile][1])
            assert serving.cache.pinned_profiles == {profile: versions[-1]}
        assert versions[0] != versions[1] and serving.cache.pinned_bytes == serving.cache.resident_bytes / 2
    finally:
        serving.close()
        api.close()
