"""/dashboard: sign-in form (signed, HttpOnly session cookie) or Bearer header; refreshes itself."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import URLSafeTimedSerializer

from profilekit.api.auth import find_key
from profilekit.api.deps import COOKIE, RuntimeDep, SessionDep, key_from_request
from profilekit.dashboard import data

router = APIRouter(prefix="/dashboard", include_in_schema=False)

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}h1{font-size:1.4rem}
h2{font-size:1.1rem;margin-top:1.6rem}table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}th{background:#f3f3f3}
.num{text-align:right;font-variant-numeric:tabular-nums}progress{width:10rem}.err{color:#a00}"""


def page(title: str, body: str, refresh: bool = False) -> HTMLResponse:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>{meta}"
                        f"<style>{STYLE}</style></head><body>{body}</body></html>")


def table(header: list[str], rows: list[list], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td class='num'>{escape(str(c))}</td>" if isinstance(c, (int, float)) else f"<td>{c}</td>" for c in row)
        + "</tr>" for row in rows)
    return f"<table id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def loss_curve(losses: list[float], width: int = 240, height: int = 60) -> str:
    if len(losses) < 2:
        return ""
    top, bottom = max(losses), min(losses)
    span = (top - bottom) or 1.0
    points = " ".join(f"{i * width / (len(losses) - 1):.1f},{height - (v - bottom) / span * height:.1f}"
                      for i, v in enumerate(losses))
    return (f"<svg class='loss' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
            f"<polyline fill='none' stroke='#36c' stroke-width='1.5' points='{points}'/></svg>")


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def sign_in(message: str = "") -> HTMLResponse:
    note = f"<p class='err'>{escape(message)}</p>" if message else ""
    return page("profilekit — sign in", f"""<h1>profilekit dashboard</h1>{note}
<form method="post" action="/dashboard/login"><label>Admin key <input type="password" name="key" id="key"
 autocomplete="off" size="40"></label> <button type="submit">Sign in</button></form>""")


@router.post("/login")
def login(session: SessionDep, runtime: RuntimeDep, key: str = Form(...)):
    row = find_key(session, key)
    if row is None or row.role != "admin":
        return sign_in("That is not an admin key.")
    response = RedirectResponse("/dashboard", status_code=303)
    token = URLSafeTimedSerializer(runtime.secret, salt="dashboard").dumps(key)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
    return response


@router.post("/logout")
def logout():
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, runtime: RuntimeDep):
    caller = key_from_request(request, session, runtime)
    if caller is None:
        return sign_in()
    if not caller.is_admin:
        return page("profilekit — forbidden", "<h1>This needs an admin key</h1>")
    q, mem, serving = data.queue(session), data.memory(session, runtime), runtime.stats.summary()
    states = table(list(q["by_state"]), [list(q["by_state"].values())], "jobs-by-state")
    running = table(["job", "profiles", "method", "epoch", "progress", "loss", "loss curve"], [
        [escape(j.id), len(j.profile_ids), escape(j.params.get("method", "")), j.progress.get("epoch", 0),
         f"<progress value='{j.progress.get('step', 0)}' max='{max(1, j.progress.get('total_steps', 1))}'>"
         f"</progress> {j.progress.get('step', 0)}/{j.progress.get('total_steps', 0)}",
         f"{j.progress.get('loss', 0):.4f}", loss_curve(j.progress.get("losses", []))] for j in q["running"]],
        "running-jobs")
    recent = table(["job", "kind", "state", "profiles", "attempts", "error"], [
        [escape(j.id), j.kind, j.state, len(j.profile_ids), j.attempts, escape(j.error or "")]
        for j in q["recent"]], "recent-jobs")
    memory = table(["method", "profiles", "stored bytes", "bytes per profile"], [
        [escape(r["method"]), r["profiles"], r["total_bytes"], round(r["mean_bytes"], 1)] for r in mem["by_method"]],
        "memory-by-method")
    pools = table(["pool", "source", "N", "resident"], [
        [escape(p.pool_hash[:12]) + "…", p.source, p.num_adapters, fmt_bytes(p.nbytes)] for p in mem["pools"]],
        "pools")
    hist = table(list(serving["batch_histogram"]), [list(serving["batch_histogram"].values())], "batch-sizes")

    def ms(v):
        return "-" if v is None else f"{v * 1000:.1f} ms"

    accuracy = table(["profile", "external id", "method", "holdout accuracy", "macro-F1", "holdout rows",
                      "stored bytes"], [
        [escape(r["id"]), escape(r["external_id"] or ""), r["method"], round(r["accuracy"] or 0, 3),
         round(r["macro_f1"] or 0, 3), r["n_holdout"] or 0, r["stored_bytes"]] for r in data.accuracy(session)],
        "profile-accuracy")
    body = f"""<h1>profilekit</h1>
<h2>Training queue</h2>{states}<h3>Running</h3>{running}<h3>Recent jobs</h3>{recent}
<h2>Memory per profile</h2>
<p id="memory-totals">{mem['profiles']} profiles; current artifacts <b id="artifact-bytes">{mem['artifact_bytes']}</b>
 bytes in total; pools resident {fmt_bytes(mem['pool_bytes'])}; artifact cache {mem['cache_entries']} entries,
 <span id="cache-bytes">{mem['cache_bytes']}</span> bytes resident.</p>{memory}{pools}
<h2>Serving</h2><p id="serving">{serving['requests_per_second']:.2f} requests/s (last minute); latency p50
 {ms(serving['p50_seconds'])}, p99 {ms(serving['p99_seconds'])}; {serving['batches']} batches.</p>{hist}
<h2>Holdout accuracy per profile</h2>{accuracy}"""
    return page("profilekit dashboard", body, refresh=True)
