"""`profilekit serve`: the API, plus one worker in embedded mode."""

from __future__ import annotations

import threading
from pathlib import Path

from profilekit.settings import get_settings


def admin_key_for_embedded(settings) -> str | None:
    """Embedded default: a local admin key, made on first start and kept in data_dir/admin.key."""
    from profilekit.api.auth import create_key, find_key
    from profilekit.store import make_engine, make_session_factory

    path = Path(settings.data_dir) / "admin.key"
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    with sessions() as session:
        if path.is_file() and find_key(session, path.read_text().strip()) is not None:
            return path.read_text().strip()
        key = create_key(session, tenant="default", role="admin", name="embedded admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key)
    path.chmod(0o600)
    return key


def serve(args) -> int:
    """Serve until SIGTERM or Ctrl-C, then exit 0 once requests in flight are done (api/server.py) and the
    embedded worker has handed its running job back to the queue."""
    import uvicorn

    from profilekit.api.app import create_app
    from profilekit.api.runtime import Runtime
    from profilekit.api.server import DrainingServer
    from profilekit.cli.key_commands import bootstrap_admin
    from profilekit.cli.store_commands import _start_embedded_worker, stop_embedded_worker
    from profilekit.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    bootstrap_admin(settings)
    key = admin_key_for_embedded(settings) if settings.embedded else None
    runtime = Runtime(settings)
    try:
        if settings.preload_model:  # before uvicorn: pins it cannot honour stop here with one line naming the
            _ = runtime.serving  # setting (ServingConfigError, exit status 2), not a startup traceback
    except BaseException:
        runtime.close()
        raise
    worker = _start_embedded_worker() if settings.embedded and not args.no_worker else None
    ready = threading.Event()

    class Server(DrainingServer):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"profilekit ready at http://{host}:{port}", flush=True)
            if key:
                print(f"admin key: {key}", flush=True)
            print(f"dashboard: http://{host}:{port}/dashboard", flush=True)
            server_address[:] = [host, port]
            ready.set()

    server_address: list = []
    app = create_app(settings, runtime=runtime)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=settings.shutdown_timeout_seconds)
    server = Server(config, draining=app.state.draining, drain_seconds=settings.drain_seconds)
    if args.demo:
        from profilekit.cli.quickstart import run_quickstart

        threading.Thread(target=run_quickstart, args=(ready, server_address, key, args), daemon=True).start()
    try:
        server.run()
    finally:
        if worker is not None:
            stop_embedded_worker(worker)
        runtime.close()
    print("profilekit stopped", flush=True)
    return 0


def add_commands(commands) -> None:
    p = commands.add_parser("serve", help="serve the HTTP API (embedded mode also starts one worker)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-worker", action="store_true", help="embedded mode: do not start a worker")
    p.add_argument("--demo", action="store_true",
                   help="once serving, onboard a few news authors through the API, train and predict")
    p.add_argument("--demo-authors", type=int, default=5)
    p.add_argument("--demo-epochs", type=int, default=5)
    p.set_defaults(func=serve)
