"""The ``beafx`` command line. Subcommands are added by :func:`build_parser`."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from .data.base import MissingDependencyError


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


def _cmd_costs(args: argparse.Namespace) -> int:
    import json

    from .bench.training import run_costs

    measured = {}
    for item in args.measured or []:
        key, sep, value = item.rpartition("=")
        try:
            measured[key] = float(value)
        except ValueError:
            raise ValueError(f"--measured takes ENCODER|CHAIN=SECONDS, got {item!r}") from None
        if not sep or "|" not in key:
            raise ValueError(f"--measured takes ENCODER|CHAIN=SECONDS, got {item!r}")
    costs = run_costs(args.profile, measured=measured)
    with open(args.out, "w") as fh:
        json.dump(costs, fh, indent=2, sort_keys=True)
    print(f"wrote {args.out}")
    return 0


def check_json_out(path: str) -> None:
    """Raise ``ValueError`` unless ``--json PATH`` can be written (checked before the work)."""
    out = Path(path).expanduser()
    if out.is_dir() or not out.parent.is_dir():
        raise ValueError(f"cannot write --json {out}: {'it is a folder' if out.is_dir() else f'folder {out.parent} does not exist'}")


def write_json_out(path: str, text: str) -> None:
    """Write ``text`` to ``--json PATH``; a write error becomes a ``ValueError`` naming it."""
    try:
        Path(path).expanduser().write_text(text + "\n")
    except OSError as err:
        raise ValueError(f"cannot write --json {path}: {err.strerror or err}") from None


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="beafx", description="Blind estimation of audio effects (beafx).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("bench", help="time the effects, data pipeline and training against baselines, in one run")
    p.add_argument("--only", help="comma-separated groups (" + ", ".join(_bench_groups()) + ")")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test of the benchmark code)")
    p.add_argument("--json", metavar="PATH", help="also write the lines as JSON")
    p.add_argument("--readme", metavar="PATH", help="replace the table between the bench markers of this file")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("costs", help="measure what a training run costs per encoder and analysis chain (JSON for the experiments' dry run)")
    p.add_argument("--profile", default="cpu", help="profile whose run is costed (default cpu)")
    p.add_argument("--out", required=True, help="JSON file to write, e.g. results/cpu/costs.json")
    p.add_argument("--measured", action="append", metavar="ENCODER|CHAIN=SECONDS", help="a whole run's observed wall time")
    p.set_defaults(func=_cmd_costs)

    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith("beafx"):
                continue
            raise
        module.add_parser(sub)
    return parser


def _bench_groups() -> list[str]:
    from .bench import GROUP_MODULES

    return list(GROUP_MODULES)


#: Modules that own subcommands; each has ``add_parser(subparsers)``.
SUBCOMMAND_MODULES = [
    "beafx.data.cli",
    "beafx.training.cli",
    "beafx.training.proxy",
    "beafx.evaluation_cli",
    "beafx.estimate_cli",
    "beafx.experiments_cli",
]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, MissingDependencyError) as err:
        print(f"beafx {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # write errors (unwritable --out, full disk ...)
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"beafx {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"beafx {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
