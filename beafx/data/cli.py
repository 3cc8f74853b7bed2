"""``beafx data``: look at and listen to a data source (book chapter 07, ``book/07_data``).

``beafx data --source SOURCE --listen out.wav`` draws a few examples exactly as training
does (:class:`~beafx.data.dataset.EffectDataset`), writes the dry clips one after the other
to ``out.wav`` and the same clips through a random synthesis chain to ``out.wet.wav``, and
prints the source's tracks per split and the music statistics of the clips
(:mod:`beafx.data.stats`) beside the ranges measured on real music.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .sources import DEFAULT_SOURCE, SPEC_FORMS

#: Silence between clips in the listening files (s).
GAP_SECONDS = 0.5


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` subcommand to ``beafx``'s subparsers."""
    p = subparsers.add_parser(
        "data",
        help="inspect a data source: tracks, music statistics, and dry/wet listening files",
        description="Draw examples from a data source as training does, print its statistics, and "
        "optionally write the dry clips to OUT and the processed ones to OUT with .wet before the suffix.",
    )
    p.add_argument("--source", default=DEFAULT_SOURCE, help=f"data source: {', '.join(SPEC_FORMS)} (default: {DEFAULT_SOURCE})")
    p.add_argument("--listen", metavar="OUT.wav", help="write the dry clips here and the wet ones to OUT.wet.wav")
    p.add_argument("--clips", type=int, default=4, help="how many examples to draw (default 4)")
    p.add_argument("--split", default="train", help="train, valid or test (default train)")
    p.add_argument("--chain", default="peq+compressor+clipper", help="synthesis chain (registry names joined by +)")
    p.add_argument("--profile", help="profile giving the clip length (default $BEAFX_PROFILE or cpu)")
    p.add_argument("--clip-seconds", type=float, help="clip length in seconds (overrides the profile)")
    p.add_argument("--seed", type=int, default=0, help="seed of the examples (default 0)")
    p.set_defaults(func=run)
    return p


def _check_args(args: argparse.Namespace) -> None:
    if args.clips < 1:
        raise ValueError(f"--clips must be at least 1, got {args.clips}")
    if args.clip_seconds is not None and not 0.05 <= args.clip_seconds <= 600:
        raise ValueError(f"--clip-seconds must be between 0.05 and 600, got {args.clip_seconds}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.listen is not None:
        out = Path(args.listen)
        if out.suffix.lower() not in (".wav", ".flac"):
            raise ValueError(f"--listen needs a .wav or .flac file name, got {args.listen!r}")
        _check_writable(out)
        _check_writable(wet_path(out))


def _check_writable(out: Path) -> None:
    """Fail early, before drawing examples, when ``out`` clearly cannot be written (the write
    itself is still checked: permissions can change, and root passes ``os.access``)."""
    folder = out.parent
    if not folder.exists():
        raise FileNotFoundError(f"--listen: cannot write {out}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OSError(f"--listen: cannot write {out}: {folder} is not a folder")
    if out.is_dir():
        raise OSError(f"--listen: cannot write {out}: it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise OSError(f"--listen: cannot write {out}: Permission denied")


def write_audio(out: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write ``audio`` to ``out`` (format from the suffix); any failure raises a one-line
    ``OSError("cannot write OUT: reason")`` and leaves no partial file behind."""
    import soundfile as sf

    from .cache import cannot_write

    try:
        fh = open(out, "wb")  # the OS's reason on failure (libsndfile only says "System error")
    except OSError as err:
        raise cannot_write(out, err) from err
    try:
        with fh:
            sf.write(fh, audio, sample_rate, format=out.suffix[1:].upper())
    except (OSError, sf.SoundFileError, RuntimeError) as err:
        out.unlink(missing_ok=True)
        raise cannot_write(out, err) from err


def wet_path(out: Path) -> Path:
    """``out.wav`` -> ``out.wet.wav``."""
    return out.with_name(out.stem + ".wet" + out.suffix)


def _concat(clips: list[np.ndarray], sample_rate: int) -> np.ndarray:
    gap = np.zeros(int(GAP_SECONDS * sample_rate), dtype=np.float32)
    parts = []
    for c in clips:
        parts += [c, gap]
    return np.concatenate(parts[:-1])


def run(args: argparse.Namespace) -> int:
    """The ``beafx data`` command. Bad arguments, missing or unreadable data, and files or a
    cache that cannot be written raise ``ValueError`` / ``OSError`` with a one-line message
    (``cannot write PATH: reason``), which :func:`beafx.cli.main` prints with exit code 2."""
    import torch

    from ..profiles import get_profile
    from . import stats
    from .base import MissingDependencyError
    from .clips import SilentTrackError
    from .dataset import EffectDataset
    from .sources import open_source

    _check_args(args)
    torch.set_num_threads(1)  # as in a DataLoader worker
    profile = get_profile(args.profile)
    try:
        source = open_source(args.source, seed=args.seed)
        clip_samples = int(round(args.clip_seconds * source.sample_rate)) if args.clip_seconds else None
        dataset = EffectDataset(source, args.split, args.chain, profile=profile, clip_samples=clip_samples,
                                seed=args.seed, repeats=max(1, -(-args.clips // max(1, len(source.tracks(args.split))))))
        examples = [dataset.example(i) for i in range(min(args.clips, len(dataset)))]
    except (MissingDependencyError, SilentTrackError) as err:
        print(f"beafx data: error: {err}", file=sys.stderr)
        return 2

    print(json.dumps(source.describe(), indent=2))
    seconds = dataset.clip_samples / source.sample_rate
    print(f"\n{len(examples)} {args.split} examples of {seconds:.2f} s, chain {args.chain} ({dataset.num_params} parameters)")
    rows = []
    for k, ex in enumerate(examples):
        row = stats.clip_stats(ex.x[0].numpy(), source.sample_rate)
        rows.append(row)
        print(f"  [{k}] {ex.track} from {ex.start / source.sample_rate:.1f} s: "
              + ", ".join(f"{name} {row[name]:.2f}" for name in stats.STATS))
    reference = stats.load_reference()
    print(f"\nmusic statistics of the dry clips (reference: real music, {reference.clip_seconds:.0f} s clips):")
    print(stats.format_summary(stats.summarize(rows), reference))

    if args.listen is not None:
        out = Path(args.listen)
        dry = _concat([ex.x[0].numpy() for ex in examples], source.sample_rate)
        wet_clips = []
        for ex in examples:
            y = ex.y[0].numpy()
            wet_clips.append(y / max(float(np.max(np.abs(y))), 1e-8))
        write_audio(out, dry, source.sample_rate)
        write_audio(wet_path(out), _concat(wet_clips, source.sample_rate), source.sample_rate)
        print(f"\nwrote {out} (dry) and {wet_path(out)} (wet, each clip peak-normalised for listening); "
              f"{len(examples)} clips separated by {GAP_SECONDS} s of silence. Parameters of each wet clip:")
        for k, ex in enumerate(examples):
            physical = dataset.chain.physical(ex.q.unsqueeze(0))
            print(f"  [{k}] " + ", ".join(f"{n}={float(v[0]):.3g}" for n, v in physical.items()))
    return 0
