"""``beafx train`` and ``beafx export``: the command-line face of :func:`beafx.training.train`."""
from __future__ import annotations

import argparse
import json
import sys

from ..data.sources import DEFAULT_SOURCE, SPEC_FORMS
from ..profiles import PROFILES, env_max_steps
from .config import ENCODER_NAMES, LOSS_NAMES, RunConfig


def _int_at_least(minimum: int, *, also: tuple[str, ...] = ()):
    """An argparse type: an integer >= ``minimum`` (or one of the words ``also``)."""
    words = "".join(f" or {w!r}" for w in also)
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(value: str):
        if value in also:
            return value
        try:
            n = int(value)
        except ValueError:
            n = minimum - 1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}{words}, got {value!r}")
        return n

    return parse


_devices = _int_at_least(1, also=("auto",))
_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig that ``beafx train`` arguments describe (``BEAFX_MAX_STEPS`` is read here)."""
    import os

    if args.chain and (args.synthesis or args.analysis):
        raise ValueError("give either --chain CHAIN or --synthesis CHAIN --analysis CHAIN, not both")
    if not args.chain and not (args.synthesis and args.analysis):
        raise ValueError("give --chain CHAIN, or both --synthesis CHAIN and --analysis CHAIN")
    synthesis = args.chain or args.synthesis
    analysis = args.chain or args.analysis
    max_steps = args.max_steps if args.max_steps is not None else env_max_steps()
    return RunConfig(
        synthesis=synthesis, analysis=analysis, encoder=args.encoder, loss=args.loss,
        profile=args.profile or os.environ.get("BEAFX_PROFILE", "cpu"), source=args.source,
        seed=args.seed, max_steps=max_steps, authors_channel_bug=args.authors_channel_bug,
        authors_time_constant_bug=args.authors_time_constant_bug,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from .run import train

    config = config_from_args(args)
    result = train(
        config, args.out, resume=args.resume, devices=args.devices, accelerator=args.accelerator,
        num_workers=args.workers,
    )
    if result.best_checkpoint is not None or result.global_step:
        print(json.dumps({"run": config.to_dict(), "result": result.__dict__}, indent=2))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .checkpoint import export_model

    metrics = None
    if args.metrics:
        try:
            with open(args.metrics) as fh:
                metrics = json.load(fh)
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read --metrics {args.metrics}: {err}") from None
    from pathlib import Path

    path = export_model(args.run, args.out, fp16=not args.fp32, metrics=metrics)
    print(f"wrote {path}", file=sys.stderr)
    if Path(args.run).is_dir():
        curves = write_curves(args.run, Path(args.out).parent / "curves.csv")
        print(f"wrote {curves}", file=sys.stderr)
    return 0


def write_curves(run_dir, out_path):
    """Write the run's merged training curves (:func:`beafx.training.run.read_curves`) as CSV."""
    import csv

    from .run import read_curves

    rows = read_curves(run_dir)
    keys = sorted({k for r in rows for k in r})
    with open(out_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return out_path


def add_parser(sub) -> None:
    """Register ``beafx train`` and ``beafx export``."""
    p = sub.add_parser("train", help="train an analysis network (encoder + head) through an analysis chain")
    p.add_argument("--chain", help="one chain for synthesis and analysis, e.g. peq or peq+compressor+clipper")
    p.add_argument("--synthesis", help="the chain that makes the training data")
    p.add_argument("--analysis", help="the differentiable chain the network drives")
    p.add_argument("--encoder", choices=ENCODER_NAMES, default="tfe")
    p.add_argument("--loss", choices=LOSS_NAMES, default="mel", help="mel: audio loss (the paper's); params: 10 MSE(q_hat, q)")
    p.add_argument("--profile", choices=list(PROFILES), help="run size (default: $BEAFX_PROFILE or cpu)")
    p.add_argument("--source", default=DEFAULT_SOURCE, help=f"data source: {', '.join(SPEC_FORMS)}")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--max-steps", type=_positive, help="cap the profile's steps (or $BEAFX_MAX_STEPS)")
    p.add_argument("--authors-channel-bug", action="store_true", help="TE as published (10 of its 66 channels)")
    p.add_argument("--authors-time-constant-bug", action="store_true",
                   help="simplified compressor as published (time constant from the threshold, linear ratio)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, logs, config)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in RUN_DIR")
    p.add_argument("--devices", type=_devices, default=1, help="number of devices (DDP when > 1) or auto")
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "cuda", "mps"])
    p.add_argument("--workers", type=_non_negative, help="DataLoader workers (default: min(5, CPUs - 1))")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("export", help="export a run's best network as a small fp16 model file")
    p.add_argument("run", help="run folder, .ckpt or .pt")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--metrics", help="a JSON file (e.g. from beafx evaluate) stored in the model")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    p.set_defaults(func=_cmd_export)
