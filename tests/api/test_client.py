"""profilekit.client against a real served instance (uvicorn on a loopback port): what a user of the
library does, the typed errors they catch, and the retry policy that waits as long as Retry-After asks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest

from profilekit import errors
from profilekit.client import (
    AsyncClient,
    Client,
    Conflict,
    Invalid,
    NoAnswer,
    NotFound,
    NotTrained,
    Overloaded,
    Retry,
    Unauthorized,
    Unreachable,
)
from tests.api.test_api import author_rows
from tests.conftest import SHARED


def test_upload_train_wait_and_predict_in_batches(server):
    with Client(server.url, server.client) as pk:
        uploaded = pk.upload(author_rows("ann", "bo"))
        ids = {p["external_id"]: p["id"] for p in uploaded["profiles"]}
        assert set(ids) == {"ann", "bo"} and uploaded["rows"] == 20
        job = pk.train(list(ids.values()), "head_only", train={"epochs": 2}, idempotency_key="client-1")
        assert pk.train(list(ids.values()), "head_only", train={"epochs": 2}, idempotency_key="client-1")["id"] \
            == job["id"]  # a retried call with the same key is the same job
        worker = threading.Thread(target=server.run_queued_jobs)
        worker.start()
        done = pk.wait(job, poll=0.1, timeout=120)
        worker.join()
        assert done["state"] == "succeeded" and done["id"] == job["id"]
        assert pk.profile(ids["ann"])["artifact"]["method"] == "head_only"

        sent = []
        pk._http.event_hooks["request"].append(lambda request: sent.append(request.url.path))
        items = [(ids["ann"], "senate vote"), {"profile_id": ids["bo"], "text": "goal"}, (ids["ann"], "match"),
                 (ids["bo"], "election"), (None, "a plain row")]
        results = pk.predict(items, batch_size=2)
        assert sent == ["/v1/predict"] * 3  # five items, two per request
        assert [r["profile_id"] for r in results] == [ids["ann"], ids["bo"], ids["ann"], ids["bo"], None]
        assert all(r["label"] in ("politics", "sports") for r in results[:4]) and results[4]["label"] is None
        assert [p["id"] for p in pk.profiles(page_size=1)] == sorted(ids.values())


def test_lamp_pair_and_files_upload(server, tmp_path):
    sample = SHARED / "data" / "lamp2-format-sample"
    with Client(server.url, server.client) as pk:
        lamp = pk.upload(sample / "LaMP_22_dev_questions.json", outputs=sample / "LaMP_22_dev_outputs.json",
                         min_rows=3)
        assert len(lamp["profiles"]) == 3 and lamp["skipped_authors"] == 0
        reader = pk.create_profile("reader-42")
        path = tmp_path / "reader.csv"
        path.write_text("text,category\nSenate passes the budget,POLITICS\nLakers win again,SPORTS\n")
        assert pk.add_examples(reader["id"], path)["rows"] == 2
        added = pk.add_examples(reader["id"], b'{"text": "Rain again", "category": "WEATHER"}')
        assert added["rows"] == 1 and pk.profile(reader["id"])["examples"] == 3
        with pytest.raises(ValueError, match="content_type"):
            pk.add_examples(reader["id"], path.with_suffix(".txt"))


def test_api_errors_arrive_typed(server):
    with Client(server.url, server.client) as pk:
        ids = {p["external_id"]: p["id"] for p in pk.upload(author_rows("cy"))["profiles"]}
        with pytest.raises(NotTrained) as untrained:
            pk.predict([(ids["cy"], "x")])
        assert untrained.value.status == 409 and untrained.value.profiles == [{"id": ids["cy"], "state": "new"}]
        with pytest.raises(NotFound) as unknown:
            pk.predict([(ids["cy"], "x"), ("nope-1", "y")])
        assert unknown.value.ids == ["nope-1"]
        with pytest.raises(errors.NotFound):  # the library's own error catches the remote one too
            pk.job("no-such-job")
        pk.create_profile("dup")
        with pytest.raises(Conflict, match="already names"):
            pk.create_profile("dup")
        small = pk.create_profile("small")["id"]
        with pytest.raises(Invalid) as refused:
            pk.train([ids["cy"], small], "head_only")
        assert [p["id"] for p in refused.value.profiles] == [small]
        with pytest.raises(Invalid, match="unknown method"):
            pk.train([ids["cy"]], "nope")
    with Client(server.url, "pk_not-a-key") as stranger, pytest.raises(Unauthorized):
        stranger.jobs()
    with Client("http://127.0.0.1:9", server.client, retry=Retry(attempts=2, backoff=0.01)) as nowhere, \
            pytest.raises(Unreachable):
        nowhere.jobs()


def test_overloaded_is_retried_after_the_wait_the_service_asks(server):
    batcher = server.runtime.serving.batcher
    original = batcher.max_queue_rows
    batcher.max_queue_rows = 1  # every two-row request is turned away with 429, Retry-After: 1
    try:
        with Client(server.url, server.client, retry=None) as impatient, pytest.raises(Overloaded) as busy:
            impatient.predict([(None, "a"), (None, "b")])
        assert busy.value.status == 429 and busy.value.retry_after == 1.0
        with Client(server.url, server.client, retry=Retry(attempts=2, backoff=0.01)) as pk:
            began = time.monotonic()
            with pytest.raises(Overloaded):
                pk.predict([(None, "a"), (None, "b")])
            assert time.monotonic() - began >= 1.0  # waited the asked second, not the 0.01 s backoff
            threading.Timer(0.5, lambda: setattr(batcher, "max_queue_rows", original)).start()
            began = time.monotonic()
            patient = Client(server.url, server.client, retry=Retry(attempts=3))
            assert len(patient.predict([(None, "a"), (None, "b")])) == 2  # the second try got through
            assert 1.0 <= time.monotonic() - began < 10
    finally:
        batcher.max_queue_rows = original


def test_a_longer_wait_than_the_policy_allows_is_raised_at_once_not_cut_short(server):
    batcher = server.runtime.serving.batcher
    original = batcher.max_queue_rows
    batcher.max_queue_rows = 1  # Retry-After: 1
    try:
        with Client(server.url, server.client, retry=Retry(attempts=5, max_wait=0.5)) as pk:
            began = time.monotonic()
            with pytest.raises(Overloaded) as busy:
                pk.predict([(None, "a"), (None, "b")])
            assert busy.value.retry_after == 1.0 and time.monotonic() - began < 0.9  # no early retry
    finally:
        batcher.max_queue_rows = original


def test_a_request_without_an_answer_is_a_typed_error_and_is_not_sent_again():
    """A service that takes the request and never answers: NoAnswer after the timeout, sent once."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        listener.settimeout(5)
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                accepted.append(connection)  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with Client(url, "pk_x", timeout=0.3, retry=Retry(attempts=3, backoff=0.01)) as pk, \
                pytest.raises(NoAnswer, match="may or may not have been carried out"):
            pk.train(["p"], "head_only")
        assert len(accepted) == 1  # a POST that may have been carried out is not sent twice
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


def test_async_client_does_the_same(server):
    async def scenario():
        async with AsyncClient(server.url, server.client) as pk:
            ids = [p["id"] for p in (await pk.upload(author_rows("dee", "eve")))["profiles"]]
            job = await pk.train(ids, "head_only", train={"epochs": 1})
            await asyncio.to_thread(server.run_queued_jobs)
            assert (await pk.wait(job, progress=False))["state"] == "succeeded"
            results = await pk.predict([(ids[0], "vote"), (ids[1], "goal"), (ids[0], "bill")], batch_size=2)
            assert [r["profile_id"] for r in results] == [ids[0], ids[1], ids[0]]
            assert [p["id"] async for p in pk.profiles(page_size=1)] == sorted(ids)
            with pytest.raises(NotFound):
                await pk.profile("nope")
            assert (await pk.jobs(state="succeeded"))[0]["id"] == job["id"]

    asyncio.run(scenario())
