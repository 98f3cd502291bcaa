"""`profilekit keys create | list | limit ID | revoke ID` on the local store (the same as /v1/keys for
admins; `limit` sets a key's predict rows/s). With --url, create, list and revoke go through /v1/keys
(cli/remote.py); `limit` has no route and refuses a URL."""

from __future__ import annotations

from profilekit.cli import remote
from profilekit.cli.common import keys_table, print_new_key
from profilekit.settings import get_settings


def _sessions():
    from profilekit.store import make_engine, make_session_factory
    from profilekit.store.migrate import upgrade

    url = get_settings().resolved_database_url
    upgrade(url)  # a fresh embedded store has no tables yet
    return make_session_factory(make_engine(url))


def bootstrap_admin(settings) -> None:
    """Honour PROFILEKIT_BOOTSTRAP_ADMIN_KEY on a migrated store (`db upgrade` and `serve` call this)."""
    from profilekit.api.auth import bootstrap_admin_key
    from profilekit.store import make_engine, make_session_factory

    if not settings.bootstrap_admin_key:
        return
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            if bootstrap_admin_key(session, settings.bootstrap_admin_key):
                print("stored PROFILEKIT_BOOTSTRAP_ADMIN_KEY as the first admin key", flush=True)
    finally:
        engine.dispose()


def keys_create(args) -> int:
    from profilekit.api.auth import check_key_request, check_rate, create_key

    check_key_request(tenant=args.tenant, role=args.role)  # before touching the store
    check_rate(args.rows_per_second)
    with _sessions()() as session:
        key = create_key(session, tenant=args.tenant, role=args.role, name=args.name,
                         rows_per_second=args.rows_per_second)
    print_new_key(key, args.role, args.tenant)
    return 0


def keys_list(args) -> int:
    from profilekit.api.auth import list_keys
    from profilekit.api.schemas import KeyOut

    with _sessions()() as session:
        keys = [KeyOut.model_validate(k, from_attributes=True).model_dump(mode="json") for k in list_keys(session)]
    print(keys_table(keys))
    return 0


def keys_limit(args) -> int:
    from profilekit.api.auth import check_rate, set_rate_limit

    check_rate(args.rows_per_second)
    with _sessions()() as session:
        row = set_rate_limit(session, key_id=args.id, rows_per_second=args.rows_per_second)
        limit = f"{row.rows_per_second:g} rows/s" if row.rows_per_second else "the server's default"
        print(f"key {row.id} ({row.role}, {row.name or 'no name'}) may now send {limit} to /v1/predict")
    return 0


def rate(text: str) -> float | None:
    return None if text == "default" else float(text)


def keys_revoke(args) -> int:
    from profilekit.api.auth import revoke_key

    with _sessions()() as session:
        row = revoke_key(session, key_id=args.id)
        print(f"revoked key {row.id} ({row.role}, {row.name or 'no name'}); its dashboard sessions are ended")
    return 0


def add_commands(commands) -> None:
    p = commands.add_parser("keys", help="API keys: create, list, revoke")
    sub = p.add_subparsers(dest="keys_command", required=True)
    c = sub.add_parser("create", help="create an API key and print it once")
    c.add_argument("--tenant", help="a client key's tenant (default: default); admin keys operate every tenant "
                   "and take none")
    c.add_argument("--role", choices=["admin", "client"], default="client")
    c.add_argument("--name")
    c.add_argument("--rows-per-second", type=rate, help="its predict rate limit in rows/s (default: the "
                   "server's PROFILEKIT_RATE_LIMIT_ROWS_PER_SECOND)")
    c.set_defaults(func=keys_create, remote=remote.keys_create)
    sub.add_parser("list", help="every key: id, role, tenant, name, created, revoked").set_defaults(
        func=keys_list, remote=remote.keys_list)
    limit = sub.add_parser("limit", help="set a key's predict rate limit (rows/s; 429 with Retry-After beyond)")
    limit.add_argument("id", help="the key's id, as `keys list` shows it")
    limit.add_argument("--rows-per-second", type=rate, required=True,
                       help="rows/s, or 'default' for the server's PROFILEKIT_RATE_LIMIT_ROWS_PER_SECOND")
    limit.set_defaults(func=keys_limit)
    r = sub.add_parser("revoke", help="revoke a key (401 from now on) and end its dashboard sessions")
    r.add_argument("id", help="the key's id, as `keys list` shows it")
    r.set_defaults(func=keys_revoke, remote=remote.keys_revoke)
