"""The dashboard's sections as HTML: jobs, workers, serving health, memory, profiles, regressions."""

from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import urlencode

from profilekit.api.dashboard.charts import loss_curve, series
from profilekit.api.dashboard.units import bytes_cell, fmt_bytes, fmt_seconds, time_cell
from profilekit.store.models import aware


def table(header: list[str], rows: list[list], table_id: str, *, footer: list | None = None,
          empty: str = "none") -> str:
    """Cells: numbers are right-aligned and escaped here; strings are taken as already-escaped HTML."""
    def cells(row):
        return "".join(f"<td class='num'>{escape(str(c))}</td>" if isinstance(c, (int, float))
                       else f"<td>{c}</td>" for c in row)

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(f"<tr>{cells(row)}</tr>" for row in rows) or \
        f"<tr><td class='empty' colspan='{len(header)}'>{escape(empty)}</td></tr>"
    foot = f"<tfoot><tr>{cells(footer)}</tr></tfoot>" if footer else ""
    return f"<table id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{foot}</table>"


def stale_warning(job, now: datetime, stale_seconds: float) -> str:
    """A warning when a running job's heartbeat is older than the orphan timeout."""
    beat = aware(job.heartbeat_at)
    if beat is None or (now - beat).total_seconds() <= stale_seconds:
        return ""
    return (f"<span class='warn stale' title='older than the orphan timeout ({fmt_seconds(stale_seconds)}): the "
            f"job hangs, or its worker died'>⚠ no heartbeat for {fmt_seconds((now - beat).total_seconds())}</span>")


def progress_cell(job) -> str:
    p = job.progress or {}
    step, total = p.get("step"), p.get("total_steps")
    if step is None or not total:
        return "<span class='empty'>starting</span>"
    return (f"<progress value='{step}' max='{max(1, total)}'></progress> "
            f"<span class='steps'>{step}/{total}</span>")


def duration(job, now: datetime) -> str:
    started, finished = aware(job.started_at), aware(job.finished_at)
    return "—" if started is None else fmt_seconds(((finished or now) - started).total_seconds())


def queue_section(q, now: datetime, stale_seconds: float) -> str:
    states = table(["state", "jobs"], [[s, n] for s, n in q["by_state"].items()], "jobs-by-state")
    running = []
    for job in q["running"]:
        p = job.progress or {}
        loss = f"{p['loss']:.4f}" if isinstance(p.get("loss"), (int, float)) else "—"
        running.append([escape(job.id), escape(job.tenant), len(job.profile_ids),
                        escape(str(job.params.get("method", ""))), escape(str(p.get("epoch", "—"))),
                        progress_cell(job), loss, loss_curve(p.get("losses") or []), escape(job.worker or "—"),
                        time_cell(aware(job.heartbeat_at), now) + stale_warning(job, now, stale_seconds)])
    running_table = table(["job", "tenant", "profiles", "method", "epoch", "progress", "loss", "loss curve",
                           "worker", "heartbeat"], running, "running-jobs", empty="no job is running")
    recent = table(["job", "tenant", "kind", "method", "state", "profiles", "created", "started", "finished",
                    "duration", "attempts", "error"], [
        [escape(j.id), escape(j.tenant), escape(j.kind), escape(str(j.params.get("method", "—"))), escape(j.state),
         len(j.profile_ids), time_cell(aware(j.created_at), now), time_cell(aware(j.started_at), now),
         time_cell(aware(j.finished_at), now), duration(j, now), j.attempts, escape(j.error or "")]
        for j in q["recent"]], "recent-jobs", empty="no jobs yet")
    return f"""<section id="queue"><h2>Training queue</h2>{states}<h3>Running</h3>{running_table}
<h3>Recent jobs</h3>{recent}</section>"""


def workers_section(workers, now: datetime, stale_seconds: float) -> str:
    rows = []
    for w in workers:
        job = w["job"]
        current = "<span class='empty'>idle</span>" if job is None else \
            f"<span class='job'>{escape(job.id)}</span> {progress_cell(job)}{stale_warning(job, now, stale_seconds)}"
        state = f"<span class='state-{w['state']}'>{w['state']}</span>"
        rows.append([escape(w["name"]), state, fmt_seconds(w["heartbeat_age"]), time_cell(w["started_at"], now),
                     current])
    body = table(["worker", "state", "heartbeat age", "started", "current job"], rows, "workers",
                 empty="no worker has reported yet")
    return f"""<section id="workers-panel"><h2>Workers</h2><p class='note'>alive: a heartbeat within the orphan
 timeout ({fmt_seconds(stale_seconds)}); lost: none since; a warning marks a running job whose own
 heartbeat is older than that.</p>{body}</section>"""


def serving_section(summary, history, cache, process: str) -> str:
    def per_second(v):
        return f"{v:.2f}/s"

    def ms(v):
        return f"{v:.1f} ms"

    def count(v):
        return f"{v:.0f}"

    def percent(v):
        return f"{v:.0%}"

    charts = "".join(series(name, history[key], fmt) for name, key, fmt in (
        ("requests/s", "requests_per_second", per_second), ("rows/s", "rows_per_second", per_second),
        ("p50 latency", "p50_ms", ms), ("p99 latency", "p99_ms", ms), ("429 answers", "rejected", count),
        ("5xx answers", "errors", count), ("queued rows", "queue_rows", count), ("process RSS", "rss_bytes", fmt_bytes),
        ("artifact cache", "cache_bytes", fmt_bytes), ("cache hit rate", "cache_hit_rate", percent)))
    lookups = cache["cache_hits"] + cache["cache_misses"]
    hit_rate = f"{cache['cache_hits'] / lookups:.1%}" if lookups else "—"
    hist = table(["rows per batch", "batches"], [[label, n] for label, n in summary["batch_histogram"].items()],
                 "batch-sizes")
    p50, p99 = summary["p50_seconds"], summary["p99_seconds"]
    return f"""<section id="serving"><h2>Serving</h2><p id="serving-summary">
{summary['requests_per_second']:.2f} requests/s (last minute); latency p50 {fmt_seconds(p50)}, p99 {fmt_seconds(p99)};
 {summary['batches']} batches. Artifact cache: <span id="cache-entries">{cache['cache_entries']}</span> profiles,
 {bytes_cell(cache['cache_bytes'], 'cache-bytes')} of {bytes_cell(cache['cache_budget'], 'cache-budget')}
 (<span id="cache-pinned">{cache['cache_pinned']}</span> pinned,
 {bytes_cell(cache['cache_pinned_bytes'], 'cache-pinned-bytes')}),
 <span id="cache-hits">{cache['cache_hits']}</span> hits, <span id="cache-misses">{cache['cache_misses']}</span>
 misses (hit rate {hit_rate}), <span id="cache-evictions">{cache['cache_evictions']}</span> evictions,
 <span id="cache-not-kept">{cache['cache_not_kept']}</span> served but too large to keep.</p>
<p id="serving-process">The last hour of the API process that answered this page ({escape(process)}); every
 replica keeps its own.</p>
<div class="charts" id="serving-charts">{charts}</div>{hist}</section>"""


def built_cell(built: dict) -> str:
    """A warm pool's sources: their count and the first few names (random and imported pools: none)."""
    if not built["count"]:
        return ""
    more = f", … ({built['count']} in all)" if built["count"] > len(built["first"]) else ""
    return f"{built['count']} profiles: " + escape(", ".join(built["first"])) + more


def memory_section(mem) -> str:
    def totals(rows, table_id, what):
        body = [[escape(r["key"]), r["profiles"], bytes_cell(r["total_bytes"]), bytes_cell(round(r["mean_bytes"]))]
                for r in rows]
        footer = [f"all {what}s", mem["trained"], bytes_cell(mem["artifact_bytes"]), ""] if rows else None
        return table([what, "profiles", "stored", "per profile"], body, table_id, empty="no trained profiles yet",
                     footer=footer)

    histogram = table(["stored bytes", "profiles"], [
        [f"{fmt_bytes(low)} – {fmt_bytes(high)}" if high else f"≥ {fmt_bytes(low)}", n]
        for low, high, n in mem["histogram"]], "bytes-histogram")
    top = table(["profile", "external id", "tenant", "method", "stored"],
                [[escape(r["id"]), escape(r["external_id"] or ""), escape(r["tenant"]), escape(r["method"]),
                  bytes_cell(r["stored_bytes"])] for r in mem["top"]], "top-profiles", empty="no trained profiles yet")
    pools = table(["pool", "name", "source", "N", "tenant", "built from", "default for", "resident"],
                  [[escape(r["pool"].pool_hash[:12]) + "…", escape(r["pool"].name or ""), escape(r["pool"].source),
                    r["pool"].num_adapters, escape(r["pool"].tenant or ""), built_cell(r["built_from"]),
                    escape(", ".join(r["default_for"])), bytes_cell(r["pool"].nbytes)]
                   for r in mem["pools"]], "pools", empty="no pools yet")
    return f"""<section id="memory"><h2>Memory per profile</h2>
<p id="memory-totals"><span id="profile-count">{mem['profiles']}</span> profiles,
 <span id="trained-count">{mem['trained']}</span> trained; current artifacts
 <b>{bytes_cell(mem['artifact_bytes'], 'artifact-bytes')}</b> in all; pools resident
 {bytes_cell(mem['pool_bytes'])}. <span class='note'>Totals as of {fmt_seconds(mem['totals_age'])} ago
 (recounted at most every 30 s).</span></p>
<div class="columns"><div><h3>By method</h3>{totals(mem['by_method'], 'memory-by-method', 'method')}
<h3>By tenant</h3>{totals(mem['by_tenant'], 'memory-by-tenant', 'tenant')}</div>
<div><h3>Bytes per profile</h3>{histogram}</div><div><h3>Largest profiles</h3>{top}</div></div>
<h3>Pools</h3>{pools}</section>"""


def profiles_section(page, *, search: str, flagged: set[str], now: datetime) -> str:
    def score(metrics, key):
        value = (metrics or {}).get(key)
        return "—" if value is None else round(value, 3)

    rows = [[escape(r["id"]), escape(r["external_id"] or ""), escape(r["tenant"]), escape(r["method"] or "—"),
             bytes_cell(r["stored_bytes"]), score(r["metrics"], "accuracy"), score(r["metrics"], "macro_f1"),
             score(r["metrics"], "n_holdout"), time_cell(aware(r["trained_at"]), now),
             "<span class='warn worse'>⚠ worse</span>" if r["id"] in flagged else ""] for r in page["items"]]
    body = table(["profile", "external id", "tenant", "method", "stored", "holdout accuracy", "macro-F1",
                  "holdout rows", "trained", ""], rows, "profile-table", empty="no profiles match")
    more = ""
    if page["next"]:
        query = urlencode({"q": search, "after": page["next"], "refresh": 0} if search else
                          {"after": page["next"], "refresh": 0})
        more = f"<a id='next-page' href='/dashboard?{query}#profiles'>next {len(page['items'])} →</a>"
    form = f"""<form id="profile-search" method="get" action="/dashboard#profiles"><input type="hidden" name="refresh"
 value="0"><input type="search" name="q" id="q" value="{escape(search)}" placeholder="external id contains…">
 <button type="submit">Search</button></form>"""
    return f"""<section id="profiles"><h2>Profiles</h2>{form}{body}<p class='pager'>{more}</p></section>"""


def regressions_section(rows) -> str:
    """Profiles whose new artifact scored much worse than their last, each with a button that promotes the
    previous artifact back (the rollback of issue #13) and a link to every version."""
    body = table(["profile", "external id", "tenant", "method", "previous accuracy", "now", "roll back"], [
        [escape(r["id"]), escape(r["external_id"] or ""), escape(r["tenant"]), escape(r["method"]),
         round(r["before"], 3), round(r["now"], 3),
         f"<form method='post' action='/dashboard/rollback' class='rollback'>"
         f"<input type='hidden' name='profile_id' value='{escape(r['id'])}'>"
         f"<input type='hidden' name='artifact_id' value='{escape(r['previous_id'])}'>"
         f"<button type='submit'>use the previous artifact</button></form> "
         f"<a class='versions' href='/v1/profiles/{escape(r['id'])}/artifacts'>all versions</a>"]
        for r in rows], "regressions", empty="no profile got worse")
    return f"""<section id="worse"><h2>Worse than before</h2><p class='note'>The current artifact's holdout
 accuracy is more than 0.1 below the previous one's; roll back by promoting the previous artifact.</p>
{body}</section>"""
