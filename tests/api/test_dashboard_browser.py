"""The ops dashboard as a person sees it in headless Chromium (Debian's `chromium` package, driven by
Playwright): signing in, the training queue, a running job's progress and loss curve, and memory per
profile matching the database. Runs against the embedded default and, in CI, PostgreSQL + Redis."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # .ci/run installs it (apt-get install chromium) when missing
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOPICS = {"sports": ["match", "goal", "league", "coach", "season"],
          "politics": ["senate", "vote", "bill", "election", "governor"]}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page, server, key: str) -> None:
    page.goto(f"{server.url}/dashboard")
    page.fill("#key", key)
    page.click("form.signin button[type=submit]")


def read_table(page, table_id: str) -> list[dict[str, str]]:
    """The body rows of a table as {header: visible text}."""
    header = [h.strip() for h in page.locator(f"#{table_id} thead th").all_inner_texts()]
    rows = []
    for row in page.locator(f"#{table_id} tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        if len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def examples_jsonl(seed: int) -> str:
    rows = [{"text": f"{words[(i + seed) % 5]} report {i}: the {words[(i * 3) % 5]} news", "category": topic}
            for topic, words in TOPICS.items() for i in range(6)]
    return "\n".join(json.dumps(r) for r in rows)


def new_profile(api, name: str, *, examples: bool = True) -> str:
    profile = api.post("/v1/profiles", json={"external_id": name})
    assert profile.status_code == 201, profile.text
    if examples:
        upload = api.post(f"/v1/profiles/{profile.json()['id']}/examples", content=examples_jsonl(len(name)),
                          headers={"Content-Type": "application/x-ndjson"})
        assert upload.status_code == 200, upload.text
    return profile.json()["id"]


def start_job(api, profile_ids: list[str], method: str) -> str:
    hyperparameters = {"k": 4} if method == "xpeft_hard" else {}  # the fixture's pool has N=12 adapters
    job = api.post("/v1/jobs", json={"profile_ids": profile_ids, "method": method, "train": {"epochs": 1},
                                     "hyperparameters": hyperparameters})
    assert job.status_code == 202, job.text
    return job.json()["id"]


def test_sign_in_takes_only_an_admin_key(server, page):
    page.goto(f"{server.url}/dashboard")
    assert page.locator("#key").is_visible()  # no key yet: the sign-in form, not the figures
    assert page.locator("#jobs-by-state").count() == 0

    sign_in(page, server, "pk_not-a-key")
    assert "not valid" in page.locator("#signin-error").inner_text()
    sign_in(page, server, server.client)
    assert "needs an admin key" in page.locator("#signin-error").inner_text()
    assert page.context.cookies() == []  # neither attempt signed anyone in
    page.goto(f"{server.url}/dashboard")
    assert page.locator("#jobs-by-state").count() == 0

    sign_in(page, server, server.admin)
    page.wait_for_url(f"{server.url}/dashboard")
    assert page.locator("#jobs-by-state").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "profilekit_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert server.admin not in cookie["value"]  # the key itself is not readable from the cookie
    assert "profilekit_session" not in page.evaluate("document.cookie")  # scripts cannot read it

    page.click("#sign-out")
    assert page.locator("#key").is_visible()
    page.goto(f"{server.url}/dashboard")
    assert page.locator("#key").is_visible()


def test_operator_sees_queue_progress_and_memory(server, page, tmp_path):
    from playwright.sync_api import expect
    from sqlalchemy import func, select

    from profilekit.store import repo
    from profilekit.store.models import Artifact, Profile

    api = server.http(server.client)
    hard = [new_profile(api, "ann"), new_profile(api, "bob")]
    head = new_profile(api, "cyd")
    empty = new_profile(api, "dee", examples=False)
    start_job(api, hard, "xpeft_hard")
    start_job(api, [head], "head_only")
    assert api.post("/v1/jobs", json={"profile_ids": [empty]}).status_code == 422  # refused up front
    with server.runtime.sessions() as session:  # a job whose profile lost its examples after it was queued
        repo.create_job(session, kind="train", profile_ids=[empty], tenant="acme",
                        params={"method": "head_only", "train": {"epochs": 1}})
        session.commit()
    assert sorted(server.run_queued_jobs()) == ["failed", "succeeded", "succeeded"]
    start_job(api, [hard[0]], "xpeft_hard")  # retrained: its first artifact is no longer current
    assert server.run_queued_jobs() == ["succeeded"]
    items = [{"profile_id": p, "text": "the senate vote on the bill"} for p in (*hard, head)]
    predicted = api.post("/v1/predict", json={"items": items})
    assert predicted.status_code == 200, predicted.text

    start_job(api, [hard[0]], "xpeft_hard")  # stays queued: no worker runs here
    running = start_job(api, [hard[1]], "xpeft_hard")
    cancelled = start_job(api, [head], "head_only")
    assert api.post(f"/v1/jobs/{cancelled}/cancel").json()["state"] == "cancelled"
    losses = [1.62, 1.41, 1.30, 1.12, 1.05, 0.93, 0.88]
    with server.runtime.sessions() as session:  # what a worker does once it has the job
        repo.claim_job(session, job_id=running, worker="test-worker")
        repo.heartbeat(session, job_id=running, progress={"epoch": 2, "step": 7, "total_steps": 20,
                                                          "loss": losses[-1], "losses": losses})

    sign_in(page, server, server.admin)
    page.wait_for_url(f"{server.url}/dashboard")
    page.goto(f"{server.url}/dashboard?refresh=0")  # hold the page still while reading it

    queue = {r["state"]: int(r["jobs"]) for r in read_table(page, "jobs-by-state")}
    assert queue == {"queued": 1, "running": 1, "succeeded": 3, "failed": 1, "cancelled": 1}
    failed = [r for r in read_table(page, "recent-jobs") if r["state"] == "failed"]
    assert len(failed) == 1 and "no examples" in failed[0]["error"]

    [row] = read_table(page, "running-jobs")
    assert row["job"] == running and row["method"] == "xpeft_hard" and row["epoch"] == "2"
    assert row["progress"] == "7/20" and row["loss"] == "0.8800"
    bar = page.locator("#running-jobs progress")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("7", "20")
    curve = page.locator("#running-jobs svg.loss")
    box = curve.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 20  # drawn, not collapsed
    polyline = curve.locator("polyline").get_attribute("points")
    points = [tuple(map(float, p.split(","))) for p in polyline.split()]
    assert len(points) == len(losses)
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    assert points[0][1] < points[-1][1]  # the falling loss is drawn falling (SVG y grows downwards)

    with server.runtime.sessions() as session:
        sums = (select(Artifact.method, func.count(), func.sum(Artifact.stored_bytes))
                .join(Profile, Profile.current_artifact_id == Artifact.id).group_by(Artifact.method))
        stored = {m: (n, int(total)) for m, n, total in session.execute(sums)}
    assert {m: n for m, (n, _) in stored.items()} == {"xpeft_hard": 2, "head_only": 1}  # of 4 stored
    shown = {r["method"]: (int(r["profiles"]), int(r["stored bytes"]))
             for r in read_table(page, "memory-by-method")}
    assert shown == stored
    total = sum(b for _, b in stored.values())
    assert int(page.locator("#artifact-bytes").inner_text()) == total
    footer = page.locator("#memory-by-method tfoot td").all_inner_texts()
    assert footer[:3] == ["all methods", "3", str(total)]
    by_api = [api.get(f"/v1/profiles/{p}").json()["artifact"] for p in (*hard, head)]
    assert sum(a["stored_bytes"] for a in by_api) == total  # the same bytes the API reports per profile
    assert int(page.locator("#cache-entries").inner_text()) == 3  # the three profiles just served
    assert int(page.locator("#cache-bytes").inner_text()) == server.runtime.serving.cache.resident_bytes > 0

    accuracy = {r["profile"]: r["holdout accuracy"] for r in read_table(page, "profile-accuracy")}
    assert accuracy == {a_id: str(round(a["metrics"]["accuracy"], 3))
                        for a_id, a in zip((*hard, head), by_api, strict=True)}
    assert sum(int(r["batches"]) for r in read_table(page, "batch-sizes")) >= 1
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    page.goto(f"{server.url}/dashboard")  # refreshing by itself: a newly queued job shows up
    assert re.search(r"refreshing every \d+ s", page.locator("#refresh-state").inner_text())
    start_job(api, [head], "head_only")
    queued = page.locator("#jobs-by-state tbody tr", has_text="queued").locator("td").nth(1)
    expect(queued).to_have_text("2", timeout=20_000)
