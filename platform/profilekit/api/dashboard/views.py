"""/dashboard: sign-in form (a server-side session; the HttpOnly cookie holds a random id, never the key) or
Bearer header; refreshes itself."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from html import escape

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from profilekit.api.auth import SESSION_SECONDS, end_session, find_key, start_session
from profilekit.api.dashboard import data
from profilekit.api.deps import COOKIE, RuntimeDep, SessionDep, key_from_request
from profilekit.api.stats import process_memory
from profilekit.errors import NotFound

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
svg.loss,svg.series{background:#f7f9fc;border:1px solid #dde3ee;vertical-align:middle}
.warn{color:#a55400;font-weight:600;margin-left:.4rem}.state-alive{color:#1a7f37}.state-lost,.state-unknown{color:#a00}
.note{color:#555;font-size:.9rem}.columns{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
.charts{display:flex;flex-wrap:wrap;gap:.8rem}figure.chart{margin:0}figcaption{font-size:.85rem;color:#444}
.chart-values{font-size:.8rem;color:#555}#profile-search input{padding:.25rem;width:18rem}
form.signin{margin-top:1rem}form.signin input{padding:.3rem}"""


def page(title: str, body: str, *, refresh: int = 0, status_code: int = 200) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh > 0 else ""
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'>"
                        f"<title>{escape(title)}</title>{meta}"
                        f"<style>{STYLE}</style></head><body>{body}</body></html>", status_code=status_code)


def sign_in(message: str = "", status_code: int = 200) -> HTMLResponse:
    note = f"<p class='err' id='signin-error'>{escape(message)}</p>" if message else ""
    form = """<form class="signin" method="post" action="/dashboard/login"><label>Admin key
 <input type="password" name="key" id="key" autocomplete="off" size="40" required></label>
 <button type="submit">Sign in</button></form>"""
    body = f"<header><h1>profilekit dashboard</h1></header><main>{note}{form}</main>"
    return page("profilekit — sign in", body, status_code=status_code)


def served_over_https(request: Request) -> bool:
    """HTTPS here, or at the proxy in front of us (X-Forwarded-Proto): then the cookie is Secure."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


@router.post("/login")
def login(request: Request, session: SessionDep, key: str = Form(...)):
    row = find_key(session, key)
    if row is None:
        return sign_in("That key is not valid.", 401)
    if row.role != "admin":
        return sign_in(f"That is a {row.role} key; the dashboard needs an admin key.", 403)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(COOKIE, start_session(session, key=row), httponly=True, samesite="strict",
                        secure=served_over_https(request), max_age=SESSION_SECONDS)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep):
    """Ends the session on the server too: a copied cookie stops working at once."""
    if COOKIE in request.cookies:
        end_session(session, request.cookies[COOKIE])
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.post("/rollback")
def rollback(request: Request, session: SessionDep, profile_id: str = Form(..., max_length=64),
             artifact_id: str = Form(..., max_length=64)):
    """The "Worse than before" table's button: the profile's previous artifact becomes current again (the
    same promote as `POST /v1/profiles/{id}/artifacts/{artifact_id}/promote`). The session cookie is
    SameSite=strict, so another site's form cannot send it."""
    from profilekit.api.services.profiles import promote_artifact

    caller = key_from_request(request, session)
    if caller is None:
        return sign_in()
    if not caller.is_admin:
        return page("profilekit — forbidden", "<main><h1>This needs an admin key</h1></main>", status_code=403)
    try:
        promote_artifact(session, caller, profile_id, artifact_id)
    except NotFound as exc:
        return page("profilekit — not found", f"<main><h1>{escape(str(exc))}</h1>"
                    "<p><a href='/dashboard'>back to the dashboard</a></p></main>", status_code=404)
    return RedirectResponse("/dashboard", status_code=303)


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, runtime: RuntimeDep,
              refresh: int = Query(5, ge=0, le=3600, description="seconds between reloads; 0 pauses"),
              q: str = Query("", max_length=200, description="profiles whose external id contains this"),
              after: str = Query("", max_length=64, description="the profiles page after this id")):
    from profilekit.api.dashboard import sections

    caller = key_from_request(request, session)
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
    now, stale = datetime.now(timezone.utc), runtime.settings.job_stale_seconds
    memory, worse = data.memory(session, runtime), data.regressions(session)
    runtime.history.sample(lambda: process_memory(runtime))  # this minute's memory as the page is drawn
    history = runtime.history.series()
    body = (sections.queue_section(data.queue(session), now, stale),
            sections.workers_section(data.workers(session, stale_seconds=stale, now=now), now, stale),
            sections.serving_section(runtime.stats.summary(), history, memory,
                                     f"{socket.gethostname()}, pid {os.getpid()}"),
            sections.memory_section(memory), sections.regressions_section(worse),
            sections.profiles_section(data.profiles_page(session, search=q.strip(), after=after), search=q.strip(),
                                      flagged={r["id"] for r in worse}, now=now))
    return page("profilekit dashboard", header + "<main>" + "\n".join(body) + "</main>", refresh=refresh)
