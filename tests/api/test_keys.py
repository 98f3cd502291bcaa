"""Keys and dashboard sessions over real HTTP: the cookie names a server-side session (never the key),
revoking a key locks it out of the API and ends its dashboard sessions at once, and admin keys operate
every tenant (so they take no tenant)."""

from __future__ import annotations

import base64
import binascii

from profilekit.api.auth import find_key, hash_key
from profilekit.store import KeySession


def sign_in(server, key: str, **headers):
    with server.http() as http:
        return http.post("/dashboard/login", data={"key": key}, headers=headers, follow_redirects=False)


def dashboard(server, cookie: str) -> str:
    with server.http() as http:
        return http.get("/dashboard", headers={"Cookie": f"profilekit_session={cookie}"}).text


def decodings(value: str) -> list[bytes]:
    """Every way a part of a cookie could be decoded (base64, url-safe, padded or not)."""
    found = []
    for part in value.replace(":", ".").split("."):
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                found.append(decode(part + "=" * (-len(part) % 4)))
            except (binascii.Error, ValueError):
                pass
    return found


def test_the_dashboard_cookie_names_a_session_never_the_key(server):
    answer = sign_in(server, server.admin)
    assert answer.status_code == 303
    header = answer.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "secure" not in header  # plain http
    cookie = answer.cookies["profilekit_session"]
    assert server.admin not in cookie and server.admin[3:] not in cookie
    assert not any(b"pk_" in decoded or server.admin[3:].encode() in decoded for decoded in decodings(cookie))
    with server.runtime.sessions() as session:
        stored = session.get(KeySession, hash_key(cookie))
        assert stored is not None and stored.key_id == find_key(session, server.admin).id
        assert session.get(KeySession, cookie) is None  # only its hash is stored
    assert "jobs-by-state" in dashboard(server, cookie)

    behind_proxy = sign_in(server, server.admin, **{"X-Forwarded-Proto": "https"})
    assert "secure" in behind_proxy.headers["set-cookie"].lower()


def test_signing_out_ends_the_session_on_the_server(server):
    cookie = sign_in(server, server.admin).cookies["profilekit_session"]
    with server.http() as http:
        assert http.post("/dashboard/logout", headers={"Cookie": f"profilekit_session={cookie}"},
                         follow_redirects=False).status_code == 303
    page = dashboard(server, cookie)  # a copy of the cookie kept after signing out
    assert "jobs-by-state" not in page and 'name="key"' in page


def test_the_dashboards_rollback_needs_an_admin_session_and_names_an_unknown_artifact(server):
    profile, _ = server.trained_profile("rolled", "head_only", {})
    form = {"profile_id": profile, "artifact_id": "no-such-artifact"}
    with server.http() as http:  # no session: the sign-in form, nothing changed
        answer = http.post("/dashboard/rollback", data=form, follow_redirects=False)
        assert answer.status_code == 200 and 'name="key"' in answer.text
        cookie = sign_in(server, server.admin).cookies["profilekit_session"]
        unknown = http.post("/dashboard/rollback", data=form, headers={"Cookie": f"profilekit_session={cookie}"})
        assert unknown.status_code == 404 and "unknown artifact no-such-artifact" in unknown.text
        missing = http.post("/dashboard/rollback", data={"profile_id": profile},
                            headers={"Cookie": f"profilekit_session={cookie}"})
        assert missing.status_code == 422 and "artifact_id" in missing.text


def test_a_revoked_key_is_refused_at_once_and_its_dashboard_sessions_end(server):
    with server.http(server.admin) as admin:
        made = admin.post("/v1/keys", json={"role": "admin", "name": "second operator"})
        assert made.status_code == 201, made.text
        second = made.json()
        cookie = sign_in(server, second["key"]).cookies["profilekit_session"]
        assert "jobs-by-state" in dashboard(server, cookie)
        with server.http(second["key"]) as http:
            assert http.get("/v1/jobs").status_code == 200

        assert admin.delete(f"/v1/keys/{second['id']}").status_code == 204

        with server.http(second["key"]) as http:
            assert http.get("/v1/jobs").status_code == 401
        assert "jobs-by-state" not in dashboard(server, cookie)
        assert sign_in(server, second["key"]).status_code == 401
        listed = {k["id"]: k for k in admin.get("/v1/keys").json()}
        assert listed[second["id"]]["revoked_at"] is not None
        assert admin.delete("/v1/keys/no-such-key").status_code == 404
    with server.http(server.admin) as still:
        assert still.get("/v1/jobs").status_code == 200  # other keys are untouched


def test_only_admins_manage_keys_and_keys_are_never_shown_again(server):
    with server.http(server.client) as client:
        assert client.get("/v1/keys").status_code == 403
        assert client.post("/v1/keys", json={"role": "admin"}).status_code == 403
    with server.http(server.admin) as admin:
        made = admin.post("/v1/keys", json={"tenant": "acme", "name": "importer"})
        assert made.status_code == 201 and made.json()["role"] == "client" and made.json()["tenant"] == "acme"
        key = made.json()["key"]
        listing = admin.get("/v1/keys")
    assert listing.status_code == 200
    assert key not in listing.text and hash_key(key) not in listing.text
    assert {"importer"} <= {k["name"] for k in listing.json()}
    with server.http(key) as fresh:
        assert fresh.post("/v1/profiles", json={"external_id": "made-by-importer"}).json()["tenant"] == "acme"


def test_an_admin_key_operates_every_tenant_and_takes_no_tenant(server, cli, capsys):
    with server.http(server.admin) as admin:
        refused = admin.post("/v1/keys", json={"role": "admin", "tenant": "acme"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "tenant"]
        assert "every tenant" in refused.text
    for key, external_id in ((server.client, "acme-reader"), (server.other_client, "globex-reader")):
        with server.http(key) as http:
            assert http.post("/v1/profiles", json={"external_id": external_id}).status_code == 201
    with server.http(server.admin) as admin:
        seen = {(p["tenant"], p["external_id"]) for p in admin.get("/v1/profiles").json()["items"]}
        own = admin.post("/v1/profiles", json={"external_id": "operator-made"}).json()
    assert {("acme", "acme-reader"), ("globex", "globex-reader")} <= seen
    assert own["tenant"] == "default"

    assert cli(["keys", "create", "--role", "admin", "--tenant", "acme"]) == 2
    assert "admin key operates every tenant" in capsys.readouterr().err
    assert cli(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    with server.runtime.sessions() as session:
        client_id = find_key(session, server.client).id
    assert client_id in listed and "(every tenant)" in listed and server.client not in listed
    assert cli(["keys", "revoke", client_id]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli(["keys", "revoke", "no-such-key"]) == 2
    with server.http(server.client) as http:
        assert http.get("/v1/profiles").status_code == 401


def test_the_bootstrap_admin_key_is_stored_once_and_only_when_no_admin_exists(tmp_path, monkeypatch, capsys):
    from profilekit.api.auth import list_keys, revoke_key
    from profilekit.cli import main
    from profilekit.settings import get_settings
    from profilekit.store import make_engine, make_session_factory

    bootstrap = "pk_" + "b" * 30
    monkeypatch.delenv("PROFILEKIT_DATABASE_URL", raising=False)
    monkeypatch.setenv("PROFILEKIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PROFILEKIT_BOOTSTRAP_ADMIN_KEY", bootstrap)
    get_settings.cache_clear()
    try:
        assert main(["db", "upgrade"]) == 0 and main(["db", "upgrade"]) == 0  # a restart stores nothing more
        assert capsys.readouterr().out.count("stored PROFILEKIT_BOOTSTRAP_ADMIN_KEY") == 1
        sessions = make_session_factory(make_engine(get_settings().resolved_database_url))
        with sessions() as session:
            [row] = list_keys(session)
            assert find_key(session, bootstrap).id == row.id and row.role == "admin"
            revoke_key(session, key_id=row.id)
        assert main(["db", "upgrade"]) == 0  # no live admin now, yet a revoked key stays revoked
        with sessions() as session:
            assert len(list_keys(session)) == 1 and find_key(session, bootstrap) is None
        monkeypatch.setenv("PROFILEKIT_BOOTSTRAP_ADMIN_KEY", "short")
        get_settings.cache_clear()
        assert main(["db", "upgrade"]) != 0
        err = capsys.readouterr().err
        assert "PROFILEKIT_BOOTSTRAP_ADMIN_KEY" in err and "20 characters" in err
        assert "short" not in err  # a key is never echoed, not even a refused one
    finally:
        get_settings.cache_clear()


def test_the_bootstrap_admin_key_is_ignored_once_an_admin_exists(server, cli, monkeypatch):
    bootstrap = "pk_" + "c" * 30
    monkeypatch.setenv("PROFILEKIT_BOOTSTRAP_ADMIN_KEY", bootstrap)
    assert cli(["db", "upgrade"]) == 0
    with server.http(bootstrap) as http:
        assert http.get("/v1/profiles").status_code == 401
