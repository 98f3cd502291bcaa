"""`profilekit --url URL --api-key KEY onboard|jobs|predict|profiles` against a served instance: what a
user of a hosted service runs, with no database URL and no model on their machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

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
