"""The FastAPI app factory. Building the app imports no torch; the serving floor (the model) is
loaded at start-up when `preload_model` is on (the default), else on the first prediction."""

from __future__ import annotations

import json
import math
import threading
import time
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError as DatabaseRefused
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from profilekit.api.limits import BodyLimit
from profilekit.api.metrics import Metrics
from profilekit.api.runtime import Runtime
from profilekit.api.stats import process_memory
from profilekit.data import DataError
from profilekit.errors import (
    Conflict,
    NotFound,
    NotTrained,
    PoolStoreError,
    ProfilekitError,
    ServingConfigError,
    UntrainableProfiles,
)
from profilekit.settings import Settings, get_settings


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson from plain dicts and lists: the hot path (/v1/predict) returns one, so its
    answer skips the response model's validation and the standard library's encoder."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


class AsciiJSONResponse(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def named_non_finite(value):
    """`value` with every infinite or NaN float as its name ("inf", "-inf", "nan"): valid JSON such as 1e999
    reads as infinity, and JSON has no way to write it back."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: named_non_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [named_non_finite(item) for item in value]
    return value


ECHOED_INPUT = 200  # characters of a refused value a 422 repeats back


def shortened_inputs(errors: list[dict]) -> list[dict]:
    """Each error's `input` as sent when short; a long one (a 200,000-character text, a 10,000-row list) is cut
    to its start and its size, so that a 422 names the field and the rule without sending the payload back."""
    out = []
    for error in errors:
        value = error.get("input")
        written = json.dumps(value, default=str)
        if len(written) > ECHOED_INPUT:
            size = (f"{len(value):,} characters" if isinstance(value, str) else
                    f"{len(value):,} items" if isinstance(value, (list, dict)) else "long")
            error = error | {"input": f"{written[:ECHOED_INPUT]}… ({size})"}
        out.append(error)
    return out


def error_response(exc: ProfilekitError) -> JSONResponse:
    """A typed error → its status and JSON body (404 unknown, 409 not trained or taken, 503 this process's
    serving settings or a pool's stored bytes it cannot read, 422 the rest)."""
    if isinstance(exc, NotFound):
        detail = {"message": str(exc), "unknown_profile_ids": exc.ids} if exc.ids else str(exc)
        return JSONResponse({"detail": detail}, status_code=404)
    if isinstance(exc, NotTrained):
        return JSONResponse({"detail": {"message": str(exc), "profiles": exc.profiles}}, status_code=409)
    if isinstance(exc, Conflict):
        return JSONResponse({"detail": str(exc)}, status_code=409)
    if isinstance(exc, UntrainableProfiles):
        return JSONResponse({"detail": {"message": str(exc), "profiles": exc.profiles}}, status_code=422)
    if isinstance(exc, (ServingConfigError, PoolStoreError)):  # this replica's settings or store, not the request
        return JSONResponse({"detail": str(exc)}, status_code=503)
    if isinstance(exc, DataError):
        return JSONResponse({"detail": str(exc), "errors": exc.errors}, status_code=422)
    return JSONResponse({"detail": str(exc)}, status_code=422)


def route_template(request: Request) -> str:
    """The matched route's full template (/v1/profiles/{profile_id}), whatever prefixes its router was
    included under; "unmatched" for a path no route serves (one label for every unknown URL)."""
    route = getattr(request.scope.get("route"), "path", None)
    if route is None:
        return "unmatched"
    segments = request.url.path.rstrip("/").split("/")  # ["", "v1", "profiles", "abc"]
    prefix = segments[:len(segments) - len(route.strip("/").split("/"))]  # the route's own: profiles/{id}
    return "/".join(prefix) + route


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    from profilekit.api import openapi
    from profilekit.api.dashboard import views as dashboard
    from profilekit.api.routes import health, jobs, keys, pools, predict, profiles, uploads

    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.runtime = runtime or Runtime(settings)
        app.state.metrics = Metrics(app.state.runtime)
        exporter = app.state.metrics.serve(settings.metrics_host, settings.metrics_port) \
            if settings.metrics_port else None
        if settings.preload_model:
            await run_in_threadpool(lambda: app.state.runtime.serving)
        yield
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()
        if runtime is None:
            app.state.runtime.close()

    app = FastAPI(title="profilekit", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Personalised predictions for very many profiles from one frozen encoder. "
                              "Send an API key as `Authorization: Bearer pk_…` (the Authorize button).")
    app.state.draining = threading.Event()  # set on SIGTERM (api/server.py): /readyz answers 503
    openapi.install(app)
    for module in (profiles, uploads, jobs, pools, predict, keys):
        app.include_router(module.router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, json_bytes=settings.max_json_bytes, upload_bytes=settings.max_upload_bytes)

    @app.middleware("http")
    async def measure(request: Request, call_next):
        began = time.perf_counter()
        response = await call_next(request)
        path, seconds = route_template(request), time.perf_counter() - began
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.observe(request.method, path, response.status_code, seconds)
            runtime = request.app.state.runtime
            runtime.history.response(path, response.status_code, seconds, lambda: process_memory(runtime))
        return response

    @app.exception_handler(ProfilekitError)
    async def profilekit_error(request: Request, exc: ProfilekitError):
        return error_response(exc)

    @app.exception_handler(DatabaseRefused)
    async def refused_by_database(request: Request, exc: DatabaseRefused):
        # a value the database refuses (PostgreSQL: a NUL character, a string over its column's length)
        return JSONResponse({"detail": f"a value in the request is not usable: {exc.orig}"}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def collides_with_stored(request: Request, exc: IntegrityError):
        # a last line behind the services' own checks (services.retry_lost_race): a concurrent write took a
        # unique key, or removed a row this request refers to; the client may retry
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or str(exc.orig)
        return JSONResponse({"detail": f"conflicts with a concurrent change: {constraint}"}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's answer, ASCII-escaped: echoing a lone surrogate ("\ud800" is valid JSON) or a number
        # beyond any float (1e999) cannot fail; a long input comes back cut
        errors = named_non_finite(jsonable_encoder(exc.errors()))
        return AsciiJSONResponse({"detail": shortened_inputs(errors)}, status_code=422)

    return app
