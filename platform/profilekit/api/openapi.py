"""The OpenAPI description as users expect it: a Bearer scheme (the Authorize button of /docs), every
error answer with its JSON shape, and /docs served from the fastapi-offline package's files, so it works
on machines without internet (no /redoc: ReDoc fetches its logo from a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter

from profilekit.api.schemas import ConflictError, Error, InvalidError, NotFoundError

ASSETS = "/docs/assets"
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "pk_…",
          "description": "An API key (`profilekit keys create`; `make run` prints an admin key)."}
ERRORS = {401: (Error, "No API key, or one the service does not know"),
          403: (Error, "The key's role may not do this"),
          404: (NotFoundError, "Unknown id (another tenant's ids are unknown too)"),
          409: (ConflictError, "Taken, or not trained yet"),
          413: (Error, "The upload is over the size limit"),
          422: (InvalidError, "The request is wrong: fields, rows or profiles named"),
          429: (Error, "Busy: try again after Retry-After seconds"),
          503: (Error, "This replica cannot serve now: its model or a pool's stored bytes cannot be loaded"),
          504: (Error, "The request's timeout_ms passed while its rows waited (they were not computed)")}


def error_statuses(method: str, path: str) -> list[int]:
    """The error answers an operation may give: every /v1 operation 401 and 422; ids 404; creating a
    profile 409; keys (admins only) 403; uploads 413; predictions 404, 409, 429, 503 and 504."""
    statuses = [401, 422]
    if "{" in path:
        statuses.append(404)
    if (method, path) == ("post", "/v1/profiles"):
        statuses.append(409)
    if path.startswith("/v1/keys"):
        statuses.append(403)
    if method == "post" and path.endswith(("/examples", "/datasets")):
        statuses.append(413)
    if (method, path) == ("post", "/v1/predict"):
        statuses += [404, 409, 429, 503, 504]
    return sorted(set(statuses))


def describe(app: FastAPI) -> dict:
    """The schema of `app` with the Bearer scheme on every /v1 operation and its error answers."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    models = components.setdefault("schemas", {})
    for model, _ in ERRORS.values():
        definition = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        models.update(definition.pop("$defs", {}))
        models[model.__name__] = definition
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            operation["security"] = [{"bearer": []}]
            for status in error_statuses(method, path):
                model, text = ERRORS[status]
                operation.setdefault("responses", {})[str(status)] = {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed /docs (create the app with docs_url=None, redoc_url=None)."""
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")
    app.openapi = lambda: describe(app)

    @app.get("/docs", include_in_schema=False)
    def swagger():
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} — API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png",
                                   swagger_ui_parameters={"persistAuthorization": True})
