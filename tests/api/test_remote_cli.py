"""`profilekit --url URL --api-key KEY onboard|jobs|predict|profiles|keys|pools` against a served instance:
what a user of a hosted service runs, with no database URL and no model on their machine; and the commands
with no remote mode refusing a URL rather than acting on a local store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.api.test_api import author_rows
from tests.conftest import REPO


def run_jobs_while(server, done: threading.Event) -> threading.Thread:
    """A stand-in worker: runs whatever the service queues until `done` is set."""
    def loop():
        while not done.is_set():
            server.run_queued_jobs()
            time.sleep(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_onboard_jobs_profiles_and_predict_through_the_service(server, tmp_path, capsys, monkeypatch):
    from profilekit.cli import main

    # the remote mode never opens the database: a URL that cannot connect proves it
    monkeypatch.setenv("PROFILEKIT_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    rows = author_rows("Ann Writer", "Bo Reporter") + [{"text": f"sports only {i}", "category": "sports",
                                                        "author": "One Topic"} for i in range(10)]
    dataset = tmp_path / "authors.jsonl"
    dataset.write_text("\n".join(json.dumps(r) for r in rows))
    remote = ["--url", server.url, "--api-key", server.client]
    done = threading.Event()
    worker = run_jobs_while(server, done)
    try:
        code = main(remote + ["onboard", str(dataset), "--method", "head_only", "--epochs", "1", "--wait"])
    finally:
        done.set()
        worker.join(30)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "not trained: One Topic (all rows have a single label" in err
    table = out.splitlines()[out.splitlines().index(next(line for line in out.splitlines()
                                                         if line.startswith("profile"))):]
    assert len(table) == 3 and all("head_only" in line and "succeeded" in line for line in table[1:])
    ann = next(line.split()[0] for line in table if "Ann Writer" in line)

    monkeypatch.setenv("PROFILEKIT_URL", server.url)  # the environment instead of the flags
    monkeypatch.setenv("PROFILEKIT_API_KEY", server.client)
    assert main(["jobs", "--state", "succeeded"]) == 0
    listed = capsys.readouterr().out
    assert "head_only" in listed and len(listed.splitlines()) == 2
    assert main(["profiles", "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and "ready" in out and "more: --cursor" in err
    assert main(["predict", "--profile", ann, "senate vote on the bill", "the match"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("politics", "sports")
    assert main(["predict", "--profile", "nope", "text"]) == 2
    assert "unknown profile nope" in capsys.readouterr().err
    monkeypatch.setenv("PROFILEKIT_API_KEY", "pk_wrong")
    assert main(["jobs"]) == 2
    assert "401" in capsys.readouterr().err


def test_remote_predict_loads_no_model(server):
    profile, _ = server.trained_profile("light")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILEKIT_")}
    env |= {"PROFILEKIT_URL": server.url, "PROFILEKIT_API_KEY": server.client,
            "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)])}
    code = ("import sys\nfrom profilekit.cli import main\n"
            f"code = main(['predict', '--profile', {profile!r}, 'senate vote'])\nprint(code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout


def test_make_run_demo_reuses_profiles_trained_by_an_earlier_run(server, capsys):
    from argparse import Namespace
    from threading import Event

    from profilekit.cli.quickstart import run_quickstart

    server.runtime.settings.default_pool_size = 100  # xpeft_hard's default k needs more than the fixture's 12
    ready, address = Event(), ["127.0.0.1", int(server.url.rsplit(":", 1)[1])]
    ready.set()
    args = Namespace(demo_authors=2, demo_epochs=1)
    done = threading.Event()
    worker = run_jobs_while(server, done)
    try:
        run_quickstart(ready, address, server.admin, args)
        first = capsys.readouterr().out
        run_quickstart(ready, address, server.admin, args)
        second = capsys.readouterr().out
    finally:
        done.set()
        worker.join(30)
    assert "job succeeded" in first and first.count("holdout accuracy") == 2
    assert "reusing their artifacts" in second and "job " not in second and second.count("holdout accuracy") == 2
    with server.http(server.admin) as http:
        assert len(http.get("/v1/jobs").json()) == 1  # the second start trained nothing


@pytest.fixture
def no_local_store(tmp_path, monkeypatch):
    """A working folder of its own and no database URL: the local store would be its ./data (returned)."""
    from profilekit.settings import get_settings

    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for name in ("PROFILEKIT_DATABASE_URL", "PROFILEKIT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path / "cwd" / "data"
    get_settings.cache_clear()


def test_keys_and_pools_with_a_url_go_to_the_service_and_never_make_a_local_store(server, no_local_store, capsys,
                                                                                  monkeypatch):
    """The audit's `--url … keys create` made a key in a new ./data/profilekit.sqlite and exited 0."""
    from profilekit.cli import main

    remote = ["--url", server.url, "--api-key", server.admin]
    assert main(remote + ["keys", "create", "--tenant", "acme", "--name", "importer"]) == 0
    key = capsys.readouterr().out.strip()
    with server.http(key) as http:
        assert http.get("/v1/profiles").status_code == 200  # the served instance knows the new key
    assert main(remote + ["keys", "list"]) == 0
    listed = capsys.readouterr().out
    key_id = next(line.split()[0] for line in listed.splitlines() if "importer" in line)
    assert main(remote + ["keys", "revoke", key_id]) == 0
    assert f"revoked key {key_id}" in capsys.readouterr().out
    with server.http(key) as http:
        assert http.get("/v1/profiles").status_code == 401

    first, _ = server.trained_profile("a", "xpeft_hard", {"k": 2})  # registers the random pool it trained on
    assert main(remote + ["pools", "list"]) == 0
    pool = capsys.readouterr().out.splitlines()[1].split()[0]
    assert main(remote + ["pools", "set-default", pool, "--tenant", "acme"]) == 0
    assert "tenant 'acme' now trains on pool " + pool in capsys.readouterr().out
    with server.http(server.admin) as http:
        assert http.get("/v1/pools").json()[0]["default_for"] == ["acme"]
    second, _ = server.trained_profile("b")
    assert main(remote + ["pools", "build", "--tenant", "acme", "--profiles", first, second, "--epochs", "1"]) == 0
    job_id = capsys.readouterr().out.split()[-1]
    with server.http(server.admin) as http:
        job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["kind"] == "build_pool" and sorted(job["profile_ids"]) == sorted([first, second])
    assert main(remote + ["pools", "build", "--data", "rows.jsonl"]) == 2
    assert "upload the file first" in capsys.readouterr().err

    monkeypatch.setenv("PROFILEKIT_URL", server.url)  # no route for it: refused, flag or environment alike
    assert main(["--api-key", server.admin, "keys", "limit", key_id, "--rows-per-second", "2"]) == 2
    assert "`keys limit` has no HTTP route" in capsys.readouterr().err
    assert main(["--url", "http://127.0.0.1:9", "--api-key", "pk_x", "keys", "create", "--tenant", "acme"]) == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
    assert not no_local_store.exists()


@pytest.mark.parametrize("argv", [["db", "upgrade"], ["eval", "--data", "rows.jsonl", "--out", "out"], ["bench"]])
def test_a_command_of_this_machine_refuses_a_url(no_local_store, capsys, argv):
    from profilekit.cli import main

    assert main(["--url", "http://127.0.0.1:9", *argv]) == 2
    command = "db upgrade" if argv[0] == "db" else argv[0]
    assert f"`{command}` works on this machine only; run it without --url" in capsys.readouterr().err
    assert not no_local_store.exists() and not (no_local_store.parent / "out").exists()


def test_a_command_of_this_machine_ignores_profilekit_url(no_local_store, monkeypatch):
    """serve (make run), worker and db are started in shells that talk to a service too."""
    from profilekit.cli import main

    monkeypatch.setenv("PROFILEKIT_URL", "http://127.0.0.1:9")
    assert main(["db", "upgrade"]) == 0
    assert (no_local_store / "profilekit.sqlite").exists()
