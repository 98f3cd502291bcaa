"""The `profilekit` command line. onboard, jobs, predict, profiles, artifacts, keys and pools work on the
local store (PROFILEKIT_DATABASE_URL; by default SQLite in ./data) or, given --url or PROFILEKIT_URL, through
a running service's HTTP API with --api-key or PROFILEKIT_API_KEY (keys and pools need an admin key)."""

from __future__ import annotations

import argparse
import os
import sys

# Commands of this machine (its store, files and processes) that have no remote mode: they refuse --url, and
# ignore PROFILEKIT_URL, since serve (`make run`) and the rest are run in shells that talk to a service too (and
# serve hands its environment to the embedded worker). Any other command without a remote mode refuses both.
LOCAL_ONLY = {"serve", "worker", "db", "eval", "demo", "bench"}


def build_parser() -> argparse.ArgumentParser:
    """Every command's flags; building it imports no torch (commands import what they need when run)."""
    from profilekit.cli import demo, eval_command, key_commands, pool_commands, serve, store_commands
    from profilekit.data import NEWS_AUTHORS

    parser = argparse.ArgumentParser(prog="profilekit", description=__doc__)
    parser.add_argument("--url", help="a running service (env PROFILEKIT_URL): onboard, jobs, predict, profiles, "
                        "artifacts, keys (but limit) and pools then go through its HTTP API instead of the database; "
                        "serve, worker, db, eval, demo and bench refuse it")
    parser.add_argument("--api-key", help="the key for --url (env PROFILEKIT_API_KEY)")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="end-to-end demo through the library on the embedded defaults")
    p.add_argument("--data", default=str(NEWS_AUTHORS), help="LaMP-style JSONL/CSV file")
    p.add_argument("--authors", type=int, default=6, help="authors to train")
    p.add_argument("--min-rows", type=int, default=50,
                   help="which authors the demo shows: some with at least this many rows (not a training limit)")
    p.add_argument("--max-rows", type=int, default=150, help="a seeded sample of at most this many rows per author "
                   "(the largest authors have 600+; 0: all)")
    p.add_argument("--pool-size", type=int, default=100, help="N, adapters per layer")
    p.add_argument("--epochs", type=int, default=5)
    p.set_defaults(func=demo.demo)

    store_commands.add_commands(commands)
    pool_commands.add_commands(commands)
    eval_command.add_commands(commands)
    serve.add_commands(commands)
    key_commands.add_commands(commands)
    # its flags are bench/run.py's (main() hands them over), so listing them here needs no torch
    commands.add_parser("bench", add_help=False, help="benchmarks against HF PEFT and the adapters library "
                        "(bench/run.py; `profilekit bench --help` lists its flags)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from profilekit.errors import ProfilekitError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from bench.run import main as run_bench

        return run_bench(argv[1:])
    args = build_parser().parse_args(argv)
    command = " ".join(filter(None, [args.command, getattr(args, f"{args.command}_command", None)]))
    url = args.url or os.environ.get("PROFILEKIT_URL")
    if args.command in LOCAL_ONLY:
        if args.url:
            print(f"profilekit: error: `{command}` works on this machine only; run it without --url", file=sys.stderr)
            return 2
        url = None
    elif url and not getattr(args, "remote", None):
        print(f"profilekit: error: `{command}` has no HTTP route; run it without --url and PROFILEKIT_URL where "
              "the service's database is (PROFILEKIT_DATABASE_URL)", file=sys.stderr)
        return 2
    try:
        if url:
            from profilekit.client import Client

            with Client(url, args.api_key or os.environ.get("PROFILEKIT_API_KEY")) as client:
                return args.remote(args, client)
        return args.func(args)
    except (ProfilekitError, ValidationError) as exc:
        print(f"profilekit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
