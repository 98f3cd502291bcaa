"""The `profilekit` command line."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from profilekit.cli import bench_command, demo, eval_command, serve, store_commands

    parser = argparse.ArgumentParser(prog="profilekit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="end-to-end demo through the library on the embedded defaults")
    p.add_argument("--data", default=str(demo.DEFAULT_DATA), help="LaMP-style JSONL/CSV file")
    p.add_argument("--authors", type=int, default=6, help="authors to train")
    p.add_argument("--min-rows", type=int, default=50)
    p.add_argument("--pool-size", type=int, default=100, help="N, adapters per layer")
    p.add_argument("--epochs", type=int, default=5)
    p.set_defaults(func=demo.demo)

    store_commands.add_commands(commands)
    eval_command.add_commands(commands)
    bench_command.add_commands(commands)
    serve.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from profilekit.errors import ProfilekitError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ProfilekitError as exc:
        print(f"profilekit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
