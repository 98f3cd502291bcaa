"""The FastAPI app factory."""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from profilekit.api.metrics import Metrics
from profilekit.api.runtime import Runtime
from profilekit.errors import ProfilekitError
from profilekit.settings import Settings, get_settings


class AsciiJSONResponse(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    from profilekit.api.routes import health, jobs, predict, profiles, uploads
    from profilekit.dashboard import views as dashboard

    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.runtime = runtime or Runtime(settings)
        app.state.metrics = Metrics(app.state.runtime)
        yield
        if runtime is None:
            app.state.runtime.close()

    app = FastAPI(title="profilekit", version="1", lifespan=lifespan,
                  description="Personalised predictions for very many profiles from one frozen encoder.")
    for module in (profiles, uploads, jobs, predict):
        app.include_router(module.router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(dashboard.router)

    @app.middleware("http")
    async def measure(request: Request, call_next):
        began = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.observe(request.method, path, response.status_code, time.perf_counter() - began)
        return response

    @app.exception_handler(ProfilekitError)
    async def profilekit_error(request: Request, exc: ProfilekitError):
        from profilekit.store.repo import IdempotencyConflict, NotFound

        status = 404 if isinstance(exc, NotFound) else 422
        if isinstance(exc, IdempotencyConflict):
            status = 422
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(DataError)
    async def refused_by_database(request: Request, exc: DataError):
        # a value the database refuses (PostgreSQL: a NUL character, a string over its column's length)
        return JSONResponse({"detail": f"a value in the request is not usable: {exc.orig}"}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's answer, ASCII-escaped: echoing a lone surrogate ("\ud800" is valid JSON) cannot fail
        return AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    return app
