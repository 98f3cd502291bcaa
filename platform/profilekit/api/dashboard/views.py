"""/dashboard: sign-in form (signed, HttpOnly session cookie) or Bearer header; refreshes itself."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import URLSafeTimedSerializer

from profilekit.api.auth import find_key
from profilekit.api.dashboard import data
from profilekit.api.deps import COOKIE, RuntimeDep, SessionDep, key_from_request

router = APIRouter(prefix="/dashboard", include_in_schema=False)

STYLE = """body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;align-items:center;gap:1rem;padding:.6rem 1.5rem;background:#24324a;
color:#fff}
header h1{font-size:1.2rem;margin:0;flex:1}header a,header button{color:#fff;font:inherit;font-size:.9rem}
header button{background:none;border:1px solid #fff8;border-radius:4px;padding:.2rem .7rem;cursor:pointer}
main{padding:0 1.5rem 2rem}section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;
padding:.2rem 1rem .8rem;margin-top:1rem}h2{font-size:1.1rem}h3{font-size:.95rem;margin:.8rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}tfoot td{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
progress{width:10rem;vertical-align:middle}.empty{color:#777;font-style:italic}.err{color:#a00}
svg.loss{background:#f7f9fc;border:1px solid #dde3ee;vertical-align:middle}
form.signin{margin-top:1rem}form.signin input{padding:.3rem}"""


def page(title: str, body: str, *, refresh: int = 0, status_code: int = 200) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh > 0 else ""
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'>"
                        f"<title>{escape(title)}</title>{meta}"
                        f"<style>{STYLE}</style></head><body>{body}</body></html>", status_code=status_code)


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


def loss_curve(losses: list[float], width: int = 240, height: int = 60) -> str:
    """The training loss so far as a polyline (higher loss drawn higher)."""
    if len(losses) < 2:
        return "<span class='empty'>not yet</span>"
    top, bottom = max(losses), min(losses)
    span = (top - bottom) or 1.0
    pad = 3
    points = " ".join(f"{pad + i * (width - 2 * pad) / (len(losses) - 1):.1f},"
                      f"{pad + (top - v) / span * (height - 2 * pad):.1f}" for i, v in enumerate(losses))
    return (f"<svg class='loss' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
            f"<title>loss {losses[0]:.3f} → {losses[-1]:.3f} over {len(losses)} steps</title>"
            f"<polyline fill='none' stroke='#36c' stroke-width='1.5' points='{points}'/></svg>")


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def sign_in(message: str = "", status_code: int = 200) -> HTMLResponse:
    note = f"<p class='err' id='signin-error'>{escape(message)}</p>" if message else ""
    form = """<form class="signin" method="post" action="/dashboard/login"><label>Admin key
 <input type="password" name="key" id="key" autocomplete="off" size="40" required></label>
 <button type="submit">Sign in</button></form>"""
    body = f"<header><h1>profilekit dashboard</h1></header><main>{note}{form}</main>"
    return page("profilekit — sign in", body, status_code=status_code)


@router.post("/login")
def login(session: SessionDep, runtime: RuntimeDep, key: str = Form(...)):
    row = find_key(session, key)
    if row is None:
        return sign_in("That key is not valid.", 401)
    if row.role != "admin":
        return sign_in(f"That is a {row.role} key; the dashboard needs an admin key.", 403)
    response = RedirectResponse("/dashboard", status_code=303)
    token = URLSafeTimedSerializer(runtime.secret, salt="dashboard").dumps(key)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
    return response


@router.post("/logout")
def logout():
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def running_row(job) -> list:
    p = job.progress or {}
    step, total = p.get("step"), p.get("total_steps")
    progress = (f"<progress value='{step}' max='{max(1, total)}'></progress> "
                f"<span class='steps'>{step}/{total}</span>") if step is not None and total else \
        "<span class='empty'>starting</span>"
    loss = f"{p['loss']:.4f}" if isinstance(p.get("loss"), (int, float)) else "—"
    return [escape(job.id), len(job.profile_ids), escape(str(job.params.get("method", ""))),
            escape(str(p.get("epoch", "—"))), progress, loss, loss_curve(p.get("losses") or [])]


def queue_section(q) -> str:
    states = table(["state", "jobs"], [[s, n] for s, n in q["by_state"].items()], "jobs-by-state")
    running = table(["job", "profiles", "method", "epoch", "progress", "loss", "loss curve"],
                    [running_row(j) for j in q["running"]], "running-jobs", empty="no job is running")
    recent = table(["job", "kind", "state", "profiles", "attempts", "error"], [
        [escape(j.id), escape(j.kind), escape(j.state), len(j.profile_ids), j.attempts, escape(j.error or "")]
        for j in q["recent"]], "recent-jobs", empty="no jobs yet")
    return f"""<section id="queue"><h2>Training queue</h2>{states}<h3>Running</h3>{running}
<h3>Recent jobs</h3>{recent}</section>"""


def memory_section(mem) -> str:
    rows = mem["by_method"]
    by_method = table(["method", "profiles", "stored bytes", "bytes per profile"],
                      [[escape(r["method"]), r["profiles"], r["total_bytes"], round(r["mean_bytes"], 1)]
                       for r in rows], "memory-by-method", empty="no trained profiles yet",
                      footer=["all methods", sum(r["profiles"] for r in rows), mem["artifact_bytes"], ""]
                      if rows else None)
    pools = table(["pool", "source", "N", "resident"],
                  [[escape(p.pool_hash[:12]) + "…", escape(p.source), p.num_adapters, fmt_bytes(p.nbytes)]
                   for p in mem["pools"]], "pools", empty="no pools yet")
    return f"""<section id="memory"><h2>Memory per profile</h2>
<p id="memory-totals"><span id="profile-count">{mem['profiles']}</span> profiles; current artifacts
 <b id="artifact-bytes">{mem['artifact_bytes']}</b> bytes in total ({fmt_bytes(mem['artifact_bytes'])});
 pools resident {fmt_bytes(mem['pool_bytes'])}; artifact cache
 <span id="cache-entries">{mem['cache_entries']}</span> entries,
 <span id="cache-bytes">{mem['cache_bytes']}</span> bytes resident.</p>
{by_method}<h3>Pools</h3>{pools}</section>"""


def serving_section(serving) -> str:
    def ms(v):
        return "-" if v is None else f"{v * 1000:.1f} ms"

    hist = table(["rows per batch", "batches"],
                 [[label, n] for label, n in serving["batch_histogram"].items()], "batch-sizes")
    return f"""<section id="serving"><h2>Serving</h2><p id="serving-summary">
{serving['requests_per_second']:.2f} requests/s (last minute); latency p50 {ms(serving['p50_seconds'])},
 p99 {ms(serving['p99_seconds'])}; {serving['batches']} batches.</p>{hist}</section>"""


def accuracy_section(rows) -> str:
    def score(v):
        return "—" if v is None else round(v, 3)

    accuracy = table(["profile", "external id", "method", "holdout accuracy", "macro-F1", "holdout rows",
                      "stored bytes"],
                     [[escape(r["id"]), escape(r["external_id"] or ""), escape(r["method"]),
                       score(r["accuracy"]), score(r["macro_f1"]), score(r["n_holdout"]), r["stored_bytes"]]
                      for r in rows],
                     "profile-accuracy", empty="no trained profiles yet")
    return f"""<section id="accuracy"><h2>Holdout accuracy per profile</h2>{accuracy}</section>"""


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, runtime: RuntimeDep,
              refresh: int = Query(5, ge=0, le=3600, description="seconds between reloads; 0 pauses")):
    caller = key_from_request(request, session, runtime)
    if caller is None:
        return sign_in()
    if not caller.is_admin:
        return page("profilekit — forbidden", "<main><h1>This needs an admin key</h1></main>",
                    status_code=403)
    state = f"refreshing every {refresh} s" if refresh else "refreshing paused"
    toggle = ("<a href='/dashboard?refresh=0' id='pause'>pause refreshing</a>" if refresh else
              "<a href='/dashboard' id='resume'>refresh every 5 s</a>")
    header = f"""<header><h1>profilekit</h1><span id='refresh-state'>{state}</span> {toggle}
<form method="post" action="/dashboard/logout"><button type="submit" id="sign-out">Sign out</button></form>
</header>"""
    sections = (queue_section(data.queue(session)), memory_section(data.memory(session, runtime)),
                serving_section(runtime.stats.summary()), accuracy_section(data.accuracy(session)))
    return page("profilekit dashboard", header + "<main>" + "\n".join(sections) + "</main>", refresh=refresh)
