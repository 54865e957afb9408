"""The ``wmtransfer`` command line: one subcommand per workflow step; every Snakemake rule calls one.

Conventions shared by all subcommands: ``--game``/``--seed`` come from the rule's wildcards, ``--out``
is the output folder (or file), and ``--config`` is one section of the validated study config as
inline JSON or a path to a .json/.yaml file. A subcommand writes its declared outputs last, so a
killed job never leaves a complete-looking output behind.
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import ConfigError, load_json_or_file


def _cmd_games(args: argparse.Namespace) -> int:
    from . import games

    if args.game:
        for g in args.game:
            print(json.dumps(games.spec(g).__dict__))
        return 0
    for g in games.names(args.suite):
        print(g)
    return 0


def _cmd_random_baseline(args: argparse.Namespace) -> int:
    from .train.random_baseline import run_random_baseline

    run_random_baseline(args.game, args.seed, args.episodes, args.out, max_steps=args.max_steps)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmtransfer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("games", help="list game ids, or print the spec of given games")
    p.add_argument("--suite", choices=["minatar", "atari", "mario"])
    p.add_argument("game", nargs="*")
    p.set_defaults(func=_cmd_games)

    p = sub.add_parser("random-baseline", help="returns of a uniform random policy on one game")
    p.add_argument("--game", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many env steps in total")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.set_defaults(func=_cmd_random_baseline)

    # --- subcommands of other stages register below (one block per stage) ---
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"wmtransfer {args.command}: configuration error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
