"""The `make load` scenario runs: locust (its own process, so gevent never patches pytest's) posts
1–8 rows per request against a served instance for a few seconds, and every answer is a 200 or a 429."""

from __future__ import annotations

from bench.load import remote_profiles, run_locust


def test_locust_scenario_predicts_against_a_served_instance(server, tmp_path):
    profile, _ = server.trained_profile("load")
    server.http(server.client).post("/v1/profiles", json={"external_id": "untrained"}).raise_for_status()
    assert remote_profiles(server.url, server.client, 10) == [profile]  # what `make load URL=… KEY=…` draws from
    summary = run_locust(server.url, server.client, [profile], ["the senate passed the budget", "a late goal"],
                         users=4, spawn_rate=4, seconds=3, folder=tmp_path)
    statuses = {int(code): n for code, n in summary["statuses"].items()}
    assert statuses.get(200, 0) > 0, statuses
    assert set(statuses) <= {200, 429}, statuses
    assert len(summary["admitted_ms"]) == statuses[200]
