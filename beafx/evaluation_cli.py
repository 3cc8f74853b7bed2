"""``beafx evaluate RUN``: a trained model and the baselines on the fixed test set (book chapter
"Training the analysis network", ``book/10_training``; :mod:`beafx.evaluation`).

Standard output is exactly one JSON object (:func:`beafx.evaluation.evaluate`); the readable
table and every log line go to standard error.
"""
from __future__ import annotations

import argparse
import json
import sys

from .data.sources import SPEC_FORMS

from .cli import check_json_out, write_json_out

COMMAND = "evaluate"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``beafx``'s subparsers."""
    from .evaluation import EVAL_SPLITS

    p = subparsers.add_parser(
        COMMAND,
        help="evaluate a trained model beside the random, xy, mean_q and oracle baselines (JSON on stdout)",
        description="Evaluate the model of RUN (a run folder, a .ckpt or an exported .pt) on the fixed test set of "
        "its profile (same synthesis chain and seed as the run): Mel, MSE_y, MR-STFT and MSE_q with 95 % intervals "
        "from a bootstrap over tracks, beside the baselines. One JSON object on stdout; the table on stderr.",
    )
    p.add_argument("run", metavar="RUN", help="run folder (its best.ckpt), a .ckpt, or an exported .pt model")
    p.add_argument("--source", help=f"data source instead of the run's: {', '.join(SPEC_FORMS)}")
    p.add_argument("--split", default="test", choices=EVAL_SPLITS, help="test (default), valid, train, or all (every track, all splits pooled)")
    p.add_argument("--profile", help="profile whose test set (clip length, repeats, track cap) is used (default: the run's)")
    p.add_argument("--max-tracks", type=int, help="evaluate at most this many tracks")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--batch-size", type=int, help="examples per batch (default 16)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes making the test set beside the metrics (default 1, 0 on a one-CPU machine)")
    p.add_argument("--no-baselines", action="store_true", help="evaluate the model only")
    p.add_argument("--cache", metavar="DIR", help="cache the baselines as JSON files in DIR")
    p.add_argument("--device", help="device of the network (default: cuda if available, else cpu)")
    p.add_argument("--json", metavar="PATH", help="also write the JSON object to PATH")
    p.set_defaults(func=run)
    return p


def _err(message: str) -> int:
    print(f"beafx {COMMAND}: error: {message}", file=sys.stderr)
    return 2


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> None:
    if args.resamples < 1:
        raise ValueError(f"--resamples must be at least 1, got {args.resamples}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_tracks is not None and args.max_tracks < 1:
        raise ValueError(f"--max-tracks must be at least 1, got {args.max_tracks}")
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    if args.source is not None:
        from .data.sources import parse_source

        parse_source(args.source)
    if args.profile is not None:
        from .profiles import get_profile

        get_profile(args.profile)
    if args.json is not None:
        check_json_out(args.json)


def _default_workers() -> int:
    import os

    return 1 if (os.cpu_count() or 1) > 1 else 0


def run(args: argparse.Namespace) -> int:
    """The ``beafx evaluate`` command."""
    from .data.base import MissingDependencyError
    from .data.clips import SilentTrackError

    try:
        _check(args)
        import torch

        from .evaluation import evaluate, format_table
        from .training.checkpoint import load_model

        model = load_model(args.run)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model.network.to(device)
        except (RuntimeError, AssertionError) as err:
            raise ValueError(f"cannot use device {device!r}: {str(err).splitlines()[0]}") from None
        result = evaluate(
            model,
            source=args.source,
            split=args.split,
            profile=args.profile,
            baselines=not args.no_baselines,
            max_tracks=args.max_tracks,
            n_boot=args.resamples,
            batch_size=args.batch_size,
            num_workers=_default_workers() if args.workers is None else args.workers,
            cache_dir=args.cache,
            checkpoint=args.run,
            log=_log,
        )
        text = json.dumps(result, indent=1)
        if args.json is not None:
            write_json_out(args.json, text)
    except (ValueError, FileNotFoundError, MissingDependencyError, SilentTrackError) as err:
        return _err(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except OSError as err:
        return _err(f"{err.strerror or err}{f': {err.filename}' if err.filename else ''}")
    print(format_table(result), file=sys.stderr)
    print(text)
    return 0
