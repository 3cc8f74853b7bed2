"""The ``beafx`` command line. Subcommands are added by :func:`build_parser`."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    only = [g.strip() for g in args.only.split(",")] if args.only else None
    lines = bench.run(only, quick=args.quick)
    print(f"machine: {bench.machine()}")
    print(bench.format_table(lines))
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(bench.to_json(lines))
        print(f"wrote {args.json}")
    if args.readme:
        bench.write_readme(args.readme, lines)
        print(f"updated the bench section of {args.readme}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beafx", description="Blind estimation of audio effects (beafx).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("bench", help="time the effects and data pipeline against baselines, in one run")
    p.add_argument("--only", help="comma-separated groups (eq, compressor, data, widgets)")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test of the benchmark code)")
    p.add_argument("--json", metavar="PATH", help="also write the lines as JSON")
    p.add_argument("--readme", metavar="PATH", help="replace the table between the bench markers of this file")
    p.set_defaults(func=_cmd_bench)

    for register in _SUBCOMMANDS:
        register(sub)
    return parser


def _register_data(sub) -> None:
    try:
        from .data.cli import add_parser
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("beafx"):
            return
        raise
    add_parser(sub)


#: Functions that add subcommands owned by other modules (each takes the subparsers object).
_SUBCOMMANDS = [_register_data]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"beafx {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
