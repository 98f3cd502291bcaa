from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from profilekit.api.deps import RuntimeDep, current_caller
from profilekit.api.openapi import error

router = APIRouter(tags=["health"])
READY = {"ready": True, "checks": {"database": "ok", "broker": "ok", "model": "ok"}}
METRICS = ("# HELP profilekit_profiles Registered profiles\n# TYPE profilekit_profiles gauge\n"
           "profilekit_profiles 983.0\n")


def example(body, media_type: str = "application/json", status: int = 200) -> dict:
    return {status: {"content": {media_type: {"example": body}}}}


@router.get("/healthz", responses=example({"status": "ok"}))
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=example(READY) | example(
    {"ready": False, "checks": {"database": "ok", "broker": "error: connection refused", "model": "loading"}},
    status=503))
def readyz(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Database reachable, broker reachable, model loaded (unless it loads on the first prediction); 503 at
    once, without asking anyone, once the process is stopping (SIGTERM: it drains, then exits)."""
    if request.app.state.draining.is_set():
        return JSONResponse({"ready": False, "checks": {"process": "stopping: finishing the requests in flight"}},
                            status_code=503)
    checks = {}
    try:
        with runtime.db.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash
        checks["database"] = f"error: {exc}"
    try:
        with runtime.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {exc}"
    if runtime.serving_if_loaded is not None:
        checks["model"] = "ok"
    else:
        checks["model"] = "loading" if runtime.settings.preload_model else "loads on the first prediction"
    ready = all(v == "ok" for k, v in checks.items() if k != "model") and checks["model"] != "loading"
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse, responses=example(METRICS, "text/plain") | {
    401: error(401, "With PROFILEKIT_METRICS_REQUIRE_KEY: no API key, or one the service does not know"),
    403: error(403, "With PROFILEKIT_METRICS_REQUIRE_KEY: a key that is not an admin's",
               {"detail": "metrics need an admin key"}),
    404: error(404, "With PROFILEKIT_METRICS_PORT: metrics are served on that port instead",
               {"detail": "metrics are served on port 9100"})})
def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus metrics of this process (requests by route template and status, latency, batch sizes,
    queue depth, jobs by state, profiles, stored and cached bytes). With PROFILEKIT_METRICS_PORT they are
    served on that port instead; with PROFILEKIT_METRICS_REQUIRE_KEY they need an admin key."""
    settings = runtime.settings
    if settings.metrics_port is not None:
        raise HTTPException(404, f"metrics are served on port {settings.metrics_port}")
    if settings.metrics_require_key and not current_caller(request, runtime).is_admin:
        raise HTTPException(403, "metrics need an admin key")
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")
