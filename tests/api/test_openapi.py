"""The OpenAPI description and /docs as a user meets them: an Authorize button for the Bearer key, docs
that load with no internet, an example on every route, error answers shaped as documented; and /metrics
labelled by full route templates, behind a key or on a port of its own."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from profilekit.api.schemas import ConflictError, Error, InvalidError, NotFoundError
from tests.api.conftest import free_port
from tests.api.test_api import JSONL, jsonl
from tests.api.test_dashboard_browser import browser, page  # noqa: F401  (fixtures)


def resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def has_example(content: dict, spec: dict) -> bool:
    schema = resolve(content.get("schema", {}), spec)
    if schema.get("type") == "array":
        schema = resolve(schema.get("items", {}), spec)
    return "example" in content or "examples" in content or "examples" in schema


def test_every_operation_is_secured_exemplified_and_documents_its_errors(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "pk_…", "description": spec["components"][
            "securitySchemes"]["bearer"]["description"]}
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(operations) >= 14
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        body = op.get("requestBody", {}).get("content", {})
        assert all(has_example(c, spec) for c in body.values()), f"{where}: request without an example"
        ok = [r for status, r in op["responses"].items() if status.startswith("2") and r.get("content")]
        assert all(has_example(c, spec) for r in ok for c in r["content"].values()), f"{where}: no response example"
        if not path.startswith("/v1/"):
            continue
        assert op["security"] == [{"bearer": []}], where
        errors = {s: r["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
                  for s, r in op["responses"].items() if s[0] in "45"}
        assert errors["401"] == "Error" and errors["422"] == "InvalidError", where
        if "{" in path:
            assert errors["404"] == "NotFoundError", where
    predict = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"404", "409", "429", "503", "504"} <= set(predict)
    assert "413" in spec["paths"]["/v1/datasets"]["post"]["responses"]


def test_error_answers_have_the_documented_shapes(server):
    with server.http(server.client) as http:
        profile = http.post("/v1/profiles", json={"external_id": "shape"}).json()["id"]
        answers = [
            (401, Error, httpx.get(f"{server.url}/v1/jobs")),
            (404, NotFoundError, http.get("/v1/jobs/nope")),
            (404, NotFoundError, http.post("/v1/predict", json={"items": [{"profile_id": "nope", "text": "x"}]})),
            (409, ConflictError, http.post("/v1/predict", json={"items": [{"profile_id": profile, "text": "x"}]})),
            (409, ConflictError, http.post("/v1/profiles", json={"external_id": "shape"})),
            (422, InvalidError, http.post("/v1/datasets", content="{broken", headers=JSONL)),
            (422, InvalidError, http.post("/v1/jobs", json={"profile_ids": [profile], "train": {"epochs": 0}})),
            (422, InvalidError, http.post("/v1/jobs", json={"profile_ids": [profile], "method": "head_only"})),
            (413, Error, http.post("/v1/datasets", content=b"x" * 300_000, headers=JSONL)),
        ]
    for status, model, answer in answers:
        assert answer.status_code == status, answer.text
        model.model_validate(answer.json())


def test_docs_load_without_internet_and_offer_authorize(server, page):  # noqa: F811
    html = httpx.get(f"{server.url}/docs").text
    assert not re.search(r"(src|href)=[\"']https?://", html)  # no CDN
    for asset in re.findall(r"(?:src|href)=[\"'](/docs/assets/[^\"']+)", html):
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    outside = []

    def only_loopback(route):
        if route.request.url.startswith(server.url):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_loopback)
    page.goto(f"{server.url}/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 14
    page.click("button.authorize")
    assert page.locator(".auth-container input").first.is_visible()  # where the Bearer key goes
    assert outside == []
    assert httpx.get(f"{server.url}/redoc").status_code == 404  # ReDoc would fetch its logo from a CDN


def metrics_app(settings, **update):
    from profilekit.api.app import create_app
    from profilekit.store.migrate import upgrade

    settings = settings.model_copy(update={"preload_model": False, "secret_key": "t"} | update)
    upgrade(settings.resolved_database_url)
    return create_app(settings)


def test_metrics_label_routes_with_their_full_templates(server):
    with server.http(server.client) as http:
        http.get("/v1/profiles/nope")
        http.post("/v1/datasets", content=jsonl([]), headers=JSONL)
        http.get("/no/such/path")
        metrics = http.get("/metrics").text
    routes = set(re.findall(r'profilekit_http_requests_total\{method="\w+",route="([^"]+)"', metrics))
    assert {"/v1/profiles/{profile_id}", "/v1/datasets", "unmatched"} <= routes
    assert not [r for r in routes if r.startswith(("/profiles", "/jobs", "/datasets"))]  # no template lost its /v1


def test_metrics_can_require_an_admin_key(settings):
    from profilekit.api.auth import create_key

    app = metrics_app(settings, metrics_require_key=True)
    with TestClient(app) as http:
        with app.state.runtime.sessions() as session:
            admin = create_key(session, role="admin")
            client = create_key(session, tenant="acme", role="client")
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": f"Bearer {client}"}).status_code == 403
        answer = http.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert answer.status_code == 200 and "profilekit_profiles" in answer.text


def test_metrics_can_listen_on_a_port_of_their_own(settings):
    port = free_port()
    with TestClient(metrics_app(settings, metrics_port=port)) as http:
        assert http.get("/metrics").status_code == 404
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert answer.status_code == 200 and "profilekit_jobs" in answer.text
    with pytest.raises(httpx.ConnectError):  # closed with the app
        httpx.get(f"http://127.0.0.1:{port}/metrics")
