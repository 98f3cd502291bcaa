"""The OpenAPI description as users expect it: a Bearer scheme (the Authorize button of /docs), every
error answer an operation can give with its JSON shape and an example, and /docs served from the
fastapi-offline package's files, so it works on machines without internet (no /redoc: ReDoc fetches its
logo from a CDN).

An operation's error answers come from what its route does: those its own code raises are declared on the
route (`responses=errors(404)`), those its dependencies and parameters imply are added here
(implied_errors: a key → 401, an admin key → 403, parameters → 422, a JSON body → 413)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, TypeAdapter

from profilekit.api.deps import admin_caller, current_caller
from profilekit.api.schemas import (
    ARTIFACT_ID,
    JOB_ID,
    KEY_ID,
    PROFILE_ID,
    ConflictError,
    Error,
    InvalidError,
    NotFoundError,
)
from profilekit.data import MIN_ROWS

ASSETS = "/docs/assets"
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "pk_…",
          "description": "An API key (`profilekit keys create`; `make run` prints an admin key)."}


class ErrorAnswer(NamedTuple):
    model: type[BaseModel]  # the JSON shape the app answers with
    description: str
    example: dict


ERRORS = {
    401: ErrorAnswer(Error, "No API key, or one the service does not know",
                     {"detail": "missing or invalid API key (send 'Authorization: Bearer <key>')"}),
    403: ErrorAnswer(Error, "The key's role may not do this", {"detail": "this needs an admin key"}),
    404: ErrorAnswer(NotFoundError, "Unknown id (another tenant's ids are unknown too)",
                     {"detail": f"unknown profile {PROFILE_ID}"}),
    409: ErrorAnswer(ConflictError, "Collides with what is stored: a taken external id, or a concurrent change "
                     "(retry)", {"detail": f"external_id 'ann' already names profile {PROFILE_ID}"}),
    413: ErrorAnswer(Error, "The body is over the size limit",
                     {"detail": "request body of 4194304 bytes exceeds the limit of 2097152 bytes"}),
    422: ErrorAnswer(InvalidError, "The request is wrong: fields, rows or profiles named",
                     {"detail": [{"type": "greater_than_equal", "loc": ["body", "train", "epochs"],
                                  "msg": "Input should be greater than or equal to 1", "input": 0}]}),
    429: ErrorAnswer(Error, "Busy: try again after Retry-After seconds",
                     {"detail": "rate limit: this key may send 100 rows/s (bursts of 200 rows); 500 rows now "
                                "would exceed it, retry in 3 s"}),
    503: ErrorAnswer(Error, "This replica cannot serve now: its model or a pool's stored bytes cannot be loaded",
                     {"detail": "pool db://pools/5e1f0a9b2c3d has no chunks in the database"}),
    504: ErrorAnswer(Error, "The request's timeout_ms passed while its rows waited (they were not computed)",
                     {"detail": "timeout_ms=200 passed: 0.190 s passed before the rows were computed"}),
}


def error(status: int, description: str | None = None, example: dict | None = None) -> dict:
    """The OpenAPI response of an error answer: what it means, its JSON shape (the error model) and an
    example; `description` and `example` replace the usual ones where a route's answer differs."""
    answer = ERRORS[status]
    return {"description": description or answer.description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer.model.__name__}"},
                                             "example": example or answer.example}}}


def errors(*statuses: int) -> dict:
    """A route's `responses=` for the error answers its own code gives (an id it looks up: 404, …); those
    its dependencies and parameters imply are added by `describe` (see implied_errors)."""
    return {status: error(status) for status in statuses}


def implied_errors(route: APIRoute) -> set[int]:
    """The error answers a route gives before its own code runs: 401 when it needs a key, 403 when an admin
    key, 422 when it takes parameters or a body (out of bounds, or a value the database refuses), 413 when
    it reads a JSON body (limits.BodyLimit)."""
    calls = dependency_calls(route.dependant)
    statuses = set()
    if current_caller in calls:
        statuses.add(401)
    if admin_caller in calls:
        statuses.add(403)
    if get_flat_params(route.dependant) or route.body_field is not None:
        statuses.add(422)
    if route.body_field is not None:
        statuses.add(413)
    return statuses


def dependency_calls(dependant: Dependant) -> set:
    return {dependant.call}.union(*(dependency_calls(d) for d in dependant.dependencies))


def schema_routes(app: FastAPI) -> list[APIRoute]:
    """The app's routes in its schema, each with its full path. FastAPI 0.16x includes routers lazily: their
    routes are reached through iter_route_contexts (views of APIRoutes); older releases copied them into
    app.routes."""
    routes = getattr(routing, "iter_route_contexts", list)(app.routes)
    return [route for route in routes if isinstance(getattr(route, "original_route", route), APIRoute)
            and route.include_in_schema]


# an example for each path, query and header parameter of the API, by name
PARAMETER_EXAMPLES = {"profile_id": PROFILE_ID, "job_id": JOB_ID, "artifact_id": ARTIFACT_ID, "key_id": KEY_ID,
                      "cursor": PROFILE_ID, "after": 12, "limit": 50, "min_rows": MIN_ROWS, "state": "running",
                      "idempotency-key": "onboard-acme-2026-12-01"}


def describe(app: FastAPI) -> dict:
    """The schema of `app`: every operation's error answers with their JSON shapes (those its route declares
    and those its dependencies imply), an example of every parameter, and the Bearer scheme on every
    operation that may answer 401."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    models = components.setdefault("schemas", {})
    for model, _, _ in ERRORS.values():
        definition = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        models.update(definition.pop("$defs", {}))
        models[model.__name__] = definition
    for route in schema_routes(app):
        for method in route.methods:
            operation = schema["paths"][route.path_format][method.lower()]
            responses = operation["responses"]
            for status in implied_errors(route) - set(route.responses):  # replaces FastAPI's own 422 shape
                responses[str(status)] = error(status)
            operation["responses"] = dict(sorted(responses.items()))
            for parameter in operation.get("parameters", []):  # a new name without one fails test_openapi
                if parameter["name"] in PARAMETER_EXAMPLES:
                    parameter.setdefault("example", PARAMETER_EXAMPLES[parameter["name"]])
            if "401" in responses:
                operation["security"] = [{"bearer": []}]
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
