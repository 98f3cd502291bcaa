"""The `make load` scenario runs: locust (its own process, so gevent never patches pytest's) posts
1–8 rows per request against a served instance for a few seconds, and every answer is a 200 or a 429."""

from __future__ import annotations

import pytest

from bench.load import check_statuses, remote_profiles, run_locust


def test_locust_scenario_predicts_against_a_served_instance(server, tmp_path):
    profile, _ = server.trained_profile("load")
    server.http(server.client).post("/v1/profiles", json={"external_id": "untrained"}).raise_for_status()
    assert remote_profiles(server.url, server.client, 10) == [profile]  # what `make load URL=… KEY=…` draws from
    summary = run_locust(server.url + "/", server.client, [profile], ["the senate passed the budget", "a late goal"],
                         users=4, spawn_rate=4, seconds=3, folder=tmp_path)  # a URL as a browser shows it
    statuses = {int(code): n for code, n in summary["statuses"].items()}
    assert statuses.get(200, 0) > 0, statuses
    assert set(statuses) <= {200, 429}, statuses
    assert len(summary["admitted_ms"]) == statuses[200]


def test_make_load_stops_with_a_message_for_a_wrong_key_an_unreachable_url_or_404s(server):
    with pytest.raises(SystemExit, match="refused to list the key's profiles: 401"):
        remote_profiles(server.url, "pk_not_a_key", 10)
    with pytest.raises(SystemExit, match="cannot reach http://127.0.0.1:1"):
        remote_profiles("http://127.0.0.1:1", server.client, 10)
    check_statuses({200: 5, 429: 7})
    with pytest.raises(SystemExit, match="other than 200 or 429 under load: 404:3"):
        check_statuses({404: 3})


@pytest.mark.parametrize("argv, message", [(["--users", "0"], "--users must be at least 1, got 0"),
                                           (["--seconds", "-5"], "--seconds must be at least 1"),
                                           (["--forward-seconds", "0"], "--forward-seconds must be a positive")])
def test_make_load_refuses_a_load_of_nothing_before_starting_anything(monkeypatch, capsys, argv, message):
    import sys

    from bench.load import main

    monkeypatch.setattr(sys, "argv", ["load.py", *argv])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2 and message in capsys.readouterr().err
