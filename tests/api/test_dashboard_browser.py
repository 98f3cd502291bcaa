"""The ops dashboard as a person sees it in headless Chromium (Debian's `chromium` package, driven by
Playwright): signing in, the training queue, a running job's progress and loss curve, and memory per
profile matching the database. Runs against the embedded default and, in CI, PostgreSQL + Redis."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from profilekit.api.dashboard.units import fmt_bytes

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


def data_bytes(page, selector: str) -> list[int]:
    return [int(b) for b in page.locator(f"{selector} .bytes").evaluate_all("els => els.map(e => e.dataset.bytes)")]


def test_operator_sees_queue_progress_and_memory(server, page, tmp_path):
    from datetime import datetime, timedelta, timezone

    from playwright.sync_api import expect
    from sqlalchemy import func, select, update

    from profilekit.store import repo
    from profilekit.store.models import Artifact, Job, Profile, Worker

    server.runtime.settings.job_stale_seconds = 120  # the fixture's 3 s would call every job hung
    api, other = server.http(server.client), server.http(server.other_client)
    hard = [new_profile(api, "ann"), new_profile(api, "bob")]
    head = new_profile(api, "cyd")
    empty = new_profile(api, "dee", examples=False)
    twin = new_profile(other, "ann")  # another tenant's profile of the same name
    start_job(api, hard, "xpeft_hard")
    start_job(api, [head], "head_only")
    start_job(other, [twin], "head_only")
    assert api.post("/v1/jobs", json={"profile_ids": [empty]}).status_code == 422  # refused up front
    with server.runtime.sessions() as session:  # a job whose profile lost its examples after it was queued
        repo.create_job(session, kind="train", profile_ids=[empty], tenant="acme",
                        params={"method": "head_only", "train": {"epochs": 1}})
        session.commit()
    assert sorted(server.run_queued_jobs()) == ["failed", "succeeded", "succeeded", "succeeded"]
    start_job(api, [hard[0]], "xpeft_hard")  # retrained: its first artifact is no longer current
    assert server.run_queued_jobs() == ["succeeded"]
    with server.runtime.sessions() as session:  # the retrained artifact scored much worse than the first
        first, second = session.scalars(select(Artifact).where(Artifact.profile_id == hard[0])
                                        .order_by(Artifact.created_at)).all()
        first.metrics, second.metrics = first.metrics | {"accuracy": 0.9}, second.metrics | {"accuracy": 0.4}
        session.commit()
    items = [{"profile_id": p, "text": "the senate vote on the bill"} for p in (*hard, head)]
    predicted = api.post("/v1/predict", json={"items": items})
    assert predicted.status_code == 200, predicted.text
    batcher = server.runtime.serving.batcher
    batcher.max_queue_rows, limit = 1, batcher.max_queue_rows
    assert api.post("/v1/predict", json={"items": items}).status_code == 429
    batcher.max_queue_rows = limit
    for i in range(60):  # more profiles than one page holds
        new_profile(api, f"reader-{i:02d}", examples=False)

    start_job(api, [hard[0]], "xpeft_hard")  # stays queued: no worker runs here
    running = start_job(api, [hard[1]], "xpeft_hard")
    hung = start_job(api, [head], "head_only")
    cancelled = start_job(api, [head], "head_only")
    assert api.post(f"/v1/jobs/{cancelled}/cancel").json()["state"] == "cancelled"
    losses = [1.62, 1.41, 1.30, 1.12, 1.05, 0.93, 0.88]
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=10)
    with server.runtime.sessions() as session:  # what workers do once they have the jobs
        for name in ("test-worker", "hung-worker", "idle-worker", "gone-worker"):
            repo.beat_worker(session, name=name)
        session.execute(update(Worker).where(Worker.name == "gone-worker").values(heartbeat_at=long_ago))
        repo.claim_job(session, job_id=running, worker="test-worker")
        repo.heartbeat(session, job_id=running, progress={"epoch": 2, "step": 7, "total_steps": 20,
                                                          "loss": losses[-1], "losses": losses})
        repo.claim_job(session, job_id=hung, worker="hung-worker")
        repo.heartbeat(session, job_id=hung, progress={"epoch": 1, "step": 2, "total_steps": 8, "loss": 1.0})
        session.execute(update(Job).where(Job.id == hung).values(heartbeat_at=long_ago))
        session.commit()

    sign_in(page, server, server.admin)
    page.wait_for_url(f"{server.url}/dashboard")
    page.goto(f"{server.url}/dashboard?refresh=0")  # hold the page still while reading it

    # 11: jobs with their tenant, method and times
    queue = {r["state"]: int(r["jobs"]) for r in read_table(page, "jobs-by-state")}
    assert queue == {"queued": 1, "running": 2, "succeeded": 4, "failed": 1, "cancelled": 1}
    recent = read_table(page, "recent-jobs")
    failed = [r for r in recent if r["state"] == "failed"]
    assert len(failed) == 1 and "no examples" in failed[0]["error"] and failed[0]["tenant"] == "acme"
    assert {r["tenant"] for r in recent} == {"acme", "globex"}
    done = [r for r in recent if r["state"] == "succeeded"]
    assert all(re.fullmatch(r"\d+ (ms|s|min( \d+ s)?) ago", r[k]) for r in done for k in ("created", "finished"))
    assert all(re.fullmatch(r"\d+ (ms|s)|\d+ min( \d+ s)?", r["duration"]) for r in done)
    assert {r["method"] for r in done} == {"xpeft_hard", "head_only"}

    rows = {r["job"]: r for r in read_table(page, "running-jobs")}
    row = rows[running]
    assert row["method"] == "xpeft_hard" and row["epoch"] == "2" and row["tenant"] == "acme"
    assert row["progress"] == "7/20" and row["loss"] == "0.8800" and row["worker"] == "test-worker"
    assert "no heartbeat" not in row["heartbeat"] and "no heartbeat for 10 min" in rows[hung]["heartbeat"]
    bar = page.locator("#running-jobs tr", has_text=running).locator("progress")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("7", "20")
    curve = page.locator("#running-jobs svg.loss")
    box = curve.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 20  # drawn, not collapsed
    polyline = curve.locator("polyline").get_attribute("points")
    points = [tuple(map(float, p.split(","))) for p in polyline.split()]
    assert len(points) == len(losses)
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    assert points[0][1] < points[-1][1]  # the falling loss is drawn falling (SVG y grows downwards)

    # 12: workers, their liveness and current job; a hung job is called out
    workers = {r["worker"]: r for r in read_table(page, "workers")}
    assert {w: r["state"] for w, r in workers.items()} == {
        "test-worker": "alive", "hung-worker": "alive", "idle-worker": "alive", "gone-worker": "lost"}
    assert running in workers["test-worker"]["current job"] and "7/20" in workers["test-worker"]["current job"]
    assert "no heartbeat for 10 min" in workers["hung-worker"]["current job"]
    assert workers["idle-worker"]["current job"] == "idle"
    assert workers["gone-worker"]["heartbeat age"].startswith("10 min")

    # 13: serving health over the last hour
    charts = page.locator("#serving-charts figure.chart")
    assert charts.count() == 10
    latest = {c.get_attribute("data-series"): c.locator(".latest").inner_text() for c in charts.all()}
    assert float(latest["requests/s"].removesuffix("/s")) > 0 and float(latest["rows/s"].removesuffix("/s")) > 0
    assert re.fullmatch(r"\d+\.\d ms", latest["p50 latency"]) and latest["429 answers"] == "1"
    assert latest["5xx answers"] == "0" and re.fullmatch(r"\d+\.\d [MG]iB", latest["process RSS"])
    assert page.locator("#serving-charts svg.series").first.bounding_box()["width"] > 100
    cache = server.runtime.serving.cache
    assert int(page.locator("#cache-entries").inner_text()) == 3  # the three profiles served
    assert int(page.locator("#cache-bytes").get_attribute("data-bytes")) == cache.resident_bytes > 0
    assert int(page.locator("#cache-misses").inner_text()) == cache.misses == 3
    assert int(page.locator("#cache-hits").inner_text()) == cache.hits
    assert latest["artifact cache"] == fmt_bytes(cache.resident_bytes)  # measured as the page was drawn
    assert f"pid {os.getpid()}" in page.locator("#serving-process").inner_text()  # which replica's hour

    # 14: memory per profile, by method and by tenant, its spread and the largest, as the database has it
    with server.runtime.sessions() as session:
        current = select(Artifact.method, Artifact.stored_bytes, Profile.tenant).join(
            Profile, Profile.current_artifact_id == Artifact.id).subquery()
        stored = {m: (n, int(t)) for m, n, t in session.execute(
            select(current.c.method, func.count(), func.sum(current.c.stored_bytes)).group_by(current.c.method))}
        by_tenant = {t: (n, int(b)) for t, n, b in session.execute(
            select(current.c.tenant, func.count(), func.sum(current.c.stored_bytes)).group_by(current.c.tenant))}
        sizes = sorted(session.scalars(select(current.c.stored_bytes)), reverse=True)
    assert {m: n for m, (n, _) in stored.items()} == {"xpeft_hard": 2, "head_only": 2}  # of 5 stored
    shown = dict(zip([r["method"] for r in read_table(page, "memory-by-method")],
                     zip([int(r["profiles"]) for r in read_table(page, "memory-by-method")],
                         data_bytes(page, "#memory-by-method tbody tr td:nth-child(3)"), strict=True), strict=True))
    assert shown == stored
    tenants = [r["tenant"] for r in read_table(page, "memory-by-tenant")]
    assert dict(zip(tenants, zip([int(r["profiles"]) for r in read_table(page, "memory-by-tenant")],
                                 data_bytes(page, "#memory-by-tenant tbody tr td:nth-child(3)"), strict=True),
                    strict=True)) == by_tenant
    assert int(page.locator("#artifact-bytes").get_attribute("data-bytes")) == sum(sizes)
    assert re.fullmatch(r"\d+\.\d KiB", page.locator("#artifact-bytes").inner_text())  # readable, exact in data-
    assert sum(int(r["profiles"]) for r in read_table(page, "bytes-histogram")) == len(sizes)
    assert data_bytes(page, "#top-profiles") == sizes
    by_api = [api.get(f"/v1/profiles/{p}").json()["artifact"] for p in (*hard, head)]

    # 15: a profile whose new artifact scored much worse is flagged, with a link to its versions
    [worse] = read_table(page, "regressions")
    assert (worse["profile"], worse["previous accuracy"], worse["now"]) == (hard[0], "0.9", "0.4")
    link = page.locator("#regressions a.versions").get_attribute("href")
    assert link == f"/v1/profiles/{hard[0]}/artifacts"

    # 14: the per-profile table is paginated and searchable
    first_page = read_table(page, "profile-table")
    assert len(first_page) == 50 and page.locator("#next-page").count() == 1
    page.click("#next-page")
    second_page = read_table(page, "profile-table")
    assert len(first_page) + len(second_page) == 65 and page.locator("#next-page").count() == 0
    assert not {r["profile"] for r in first_page} & {r["profile"] for r in second_page}
    accuracy = {r["profile"]: r["holdout accuracy"] for r in first_page + second_page}
    assert {p: accuracy[p] for p in (hard[1], head)} == {p: str(round(a["metrics"]["accuracy"], 3))
                                                      for p, a in zip((hard[1], head), by_api[1:], strict=True)}
    assert accuracy[empty] == "—"
    page.fill("#q", "reader-1")
    page.click("#profile-search button")
    assert sorted(r["external id"] for r in read_table(page, "profile-table")) == [f"reader-1{i}" for i in range(10)]
    page.fill("#q", "ANN")
    page.click("#profile-search button")
    anns = read_table(page, "profile-table")
    assert sorted((r["external id"], r["tenant"]) for r in anns) == [("ann", "acme"), ("ann", "globex")]
    assert [r[""] for r in anns if r["profile"] == hard[0]] == ["⚠ worse"]
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    if os.environ.get("PROFILEKIT_DASHBOARD_SCREENSHOT"):  # how docs/dashboard.png was made (64 colours)
        from PIL import Image

        Image.open(tmp_path / "dashboard.png").convert("P", palette=Image.ADAPTIVE, colors=64).save(
            os.environ["PROFILEKIT_DASHBOARD_SCREENSHOT"], optimize=True)

    # 15: rolled back from the dashboard: the previous artifact is current again, and the flag goes
    page.goto(f"{server.url}/dashboard?refresh=0")
    page.click("#regressions form.rollback button")
    assert api.get(f"/v1/profiles/{hard[0]}").json()["artifact"]["metrics"]["accuracy"] == 0.9
    assert "no profile got worse" in page.locator("#regressions").inner_text()

    page.goto(f"{server.url}/dashboard")  # refreshing by itself: a newly queued job shows up
    assert re.search(r"refreshing every \d+ s", page.locator("#refresh-state").inner_text())
    start_job(api, [head], "head_only")
    queued = page.locator("#jobs-by-state tbody tr", has_text="queued").locator("td").nth(1)
    expect(queued).to_have_text("2", timeout=20_000)
