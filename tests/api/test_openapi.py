"""The OpenAPI description and /docs as a user meets them: an Authorize button for the Bearer key, docs
that load with no internet, an example on every route, error answers shaped as documented; and /metrics
labelled by full route templates, behind a key or on a port of its own."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from profilekit.api.schemas import ConflictError, Error, InvalidError, NotFoundError
from tests.api.conftest import free_port
from tests.api.test_api import JSONL, jsonl
from tests.api.test_dashboard_browser import browser, page  # noqa: F401  (fixtures)

MODELS = {model.__name__: model for model in (Error, NotFoundError, ConflictError, InvalidError)}
ADMIN_ONLY = {"POST /v1/pools", "PUT /v1/pools/default", "GET /v1/keys", "POST /v1/keys", "DELETE /v1/keys/{key_id}"}


def resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def has_example(content: dict, spec: dict) -> bool:
    schema = resolve(content.get("schema", {}), spec)
    if schema.get("type") == "array":
        schema = resolve(schema.get("items", {}), spec)
    return "example" in content or "examples" in content or "examples" in schema


def fits(model_name: str, body) -> bool:
    try:
        MODELS[model_name].model_validate(body)
    except ValidationError:
        return False
    return True


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
        for parameter in op.get("parameters", []):  # path, query and header values, each with an example
            assert "example" in parameter, f"{where}: parameter {parameter['name']} without an example"
        for status, response in op["responses"].items():
            if status[0] not in "45" or where == "GET /readyz":  # its 503 is the readiness answer, not an error
                continue
            content = response["content"]["application/json"]
            model = content["schema"]["$ref"].rsplit("/", 1)[-1]
            assert fits(model, content["example"]), f"{where} {status}: the example is not a {model}"
        if path.startswith("/v1/"):
            assert op["security"] == [{"bearer": []}] and "401" in op["responses"], where
        if op.get("requestBody"):
            assert {"413", "422"} <= set(op["responses"]), where
    assert {f"{m.upper()} {p}" for p, m, op in operations if "403" in op["responses"]} == ADMIN_ONLY | {"GET /metrics"}
    predict = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"404", "409", "429", "503", "504"} <= set(predict)


def assert_documented(spec: dict, path: str, answer: httpx.Response) -> None:
    """`answer`'s status is documented for its operation (`path`: the route's template), and its body has
    the JSON shape documented there."""
    where = f"{answer.request.method} {path} answered {answer.status_code}"
    documented = spec["paths"][path][answer.request.method.lower()]["responses"].get(str(answer.status_code))
    assert documented is not None, f"{where}, which its schema does not document"
    model = documented["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert fits(model, answer.json()), f"{where}: {answer.text} is not a {model}"


def test_every_error_answer_is_documented_with_its_shape(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    pool = {"pool_hash": "c948f5d4" + "0" * 56, "tenant": "acme"}
    too_big = b"x" * (server.runtime.settings.max_json_bytes + 1)
    with server.http(server.client) as http, server.http(server.admin) as admin:
        profile = http.post("/v1/profiles", json={"external_id": "shape"}).json()["id"]
        answers = [
            (401, "/v1/jobs", httpx.get(f"{server.url}/v1/jobs")),
            (401, "/v1/pools", httpx.get(f"{server.url}/v1/pools")),
            (403, "/v1/pools", http.post("/v1/pools", json={"largest": 2})),
            (403, "/v1/pools/default", http.put("/v1/pools/default", json={"pool_hash": None})),
            (403, "/v1/keys", http.get("/v1/keys")),
            (404, "/v1/jobs", http.post("/v1/jobs", json={"profile_ids": ["nope"]})),
            (404, "/v1/jobs/{job_id}", http.get("/v1/jobs/nope")),
            (404, "/v1/pools", admin.post("/v1/pools", json={"profile_ids": [profile, "nope"], "tenant": "acme"})),
            (404, "/v1/pools/default", admin.put("/v1/pools/default", json=pool)),
            (404, "/v1/keys/{key_id}", admin.delete("/v1/keys/nope")),
            (404, "/v1/predict", http.post("/v1/predict", json={"items": [{"profile_id": "nope", "text": "x"}]})),
            (409, "/v1/predict", http.post("/v1/predict", json={"items": [{"profile_id": profile, "text": "x"}]})),
            (409, "/v1/profiles", http.post("/v1/profiles", json={"external_id": "shape"})),
            (413, "/v1/datasets", http.post("/v1/datasets", content=b"x" * 300_000, headers=JSONL)),
            (413, "/v1/profiles", http.post("/v1/profiles", content=too_big)),
            (422, "/v1/datasets", http.post("/v1/datasets", content="{broken", headers=JSONL)),
            (422, "/v1/jobs", http.post("/v1/jobs", json={"profile_ids": [profile], "train": {"epochs": 0}})),
            (422, "/v1/jobs", http.post("/v1/jobs", json={"profile_ids": [profile], "method": "head_only"})),
            (422, "/v1/pools", admin.post("/v1/pools", json={"largest": 2, "tenant": "acme"})),
        ]
    for status, path, answer in answers:
        assert answer.status_code == status, f"{answer.request.method} {path}: {answer.text}"
        assert_documented(spec, path, answer)


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
        refused = [http.get("/metrics"), http.get("/metrics", headers={"Authorization": f"Bearer {client}"})]
        answer = http.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert [a.status_code for a in refused] == [401, 403]
    for a in refused:
        assert_documented(app.openapi(), "/metrics", a)
    assert answer.status_code == 200 and "profilekit_profiles" in answer.text


def test_metrics_can_listen_on_a_port_of_their_own(settings):
    port = free_port()
    app = metrics_app(settings, metrics_port=port)
    with TestClient(app) as http:
        elsewhere = http.get("/metrics")
        assert elsewhere.status_code == 404
        assert_documented(app.openapi(), "/metrics", elsewhere)
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert answer.status_code == 200 and "profilekit_jobs" in answer.text
    with pytest.raises(httpx.ConnectError):  # closed with the app
        httpx.get(f"http://127.0.0.1:{port}/metrics")
