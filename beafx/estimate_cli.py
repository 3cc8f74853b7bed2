"""``beafx estimate --checkpoint CKPT reference.wav [--apply-to mix.wav --out out.wav]``:
estimate a mastering chain from a real track and apply it to another mix (book chapter
"Mastering transfer", ``book/13_transfer``; :mod:`beafx.estimate`).

Standard output is one JSON object: the physical parameters with units and their spread over
windows, and what was written; notes go to standard error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli import check_json_out, write_json_out

COMMAND = "estimate"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``estimate`` subcommand to ``beafx``'s subparsers."""
    p = subparsers.add_parser(
        COMMAND,
        help="estimate the mastering chain of a track (JSON) and optionally apply it to another mix",
        description="Estimate the analysis chain's parameters of REFERENCE (any rate, mono or stereo) with a trained "
        "model: the median over 50 %-overlapping windows of the profile's clip length, printed as JSON in physical "
        "units with the interquartile range over windows. With --apply-to and --out, the estimated chain is applied "
        "to another mix and written at 44.1 kHz (24-bit, peak -1 dBFS).",
    )
    p.add_argument("reference", metavar="REFERENCE", help="the mastered track (any file soundfile reads)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="run folder, .ckpt or exported .pt model")
    p.add_argument("--apply-to", metavar="MIX", help="apply the estimated chain to this mix (needs --out)")
    p.add_argument("--out", metavar="OUT", help="where to write the processed mix (.wav or .flac)")
    p.add_argument("--device", help="device of the network (default cpu)")
    p.add_argument("--json", metavar="PATH", help="also write the JSON object to PATH")
    p.set_defaults(func=run)
    return p


def _err(message: str) -> int:
    print(f"beafx {COMMAND}: error: {message}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> None:
    from .estimate import check_writable

    if (args.apply_to is None) != (args.out is None):
        raise ValueError("--apply-to and --out go together (apply the estimate to MIX and write OUT)")
    if not Path(args.reference).expanduser().exists():
        raise FileNotFoundError(f"no audio file at {args.reference}")
    if args.apply_to is not None:
        if not Path(args.apply_to).expanduser().exists():
            raise FileNotFoundError(f"--apply-to: no audio file at {args.apply_to}")
        check_writable(args.out)
    if args.json is not None:
        check_json_out(args.json)


def run(args: argparse.Namespace) -> int:
    """The ``beafx estimate`` command."""
    try:
        _check(args)
        from .estimate import Estimator

        estimator = Estimator(args.checkpoint, device=args.device)
        estimate = estimator.estimate_file(args.reference)
        for note in estimate.notes:
            print(f"note: {note}", file=sys.stderr)
        applied = None
        if args.apply_to is not None:
            applied = estimator.apply_file(args.apply_to, args.out, estimate)
            print(f"wrote {applied['out']} ({applied['note']})", file=sys.stderr)
        config = estimator.config
        result = {
            "checkpoint": str(args.checkpoint),
            "model": {
                "encoder": config.encoder, "loss": config.loss, "synthesis": config.synthesis,
                "analysis": config.analysis, "profile": config.profile, "source": config.source, "seed": config.seed,
            },
            "estimate": estimate.to_dict(),
            "applied": applied,
        }
        text = json.dumps(result, indent=1)
        if args.json is not None:
            write_json_out(args.json, text)
    except (ValueError, FileNotFoundError) as err:
        return _err(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except OSError as err:
        return _err(f"{err.strerror or err}{f': {err.filename}' if err.filename else ''}")
    print(text)
    return 0
