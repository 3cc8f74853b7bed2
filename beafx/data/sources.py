"""One way to write a data source, one function to open it (book chapter 07, ``book/07_data``).

Everywhere in beafx (CLI ``--source``/``--data``, the book, the training config) a source is
one of::

    synthetic          procedurally generated songs (the default; needs nothing)
    debian-music       warzone2100-music (+ supertuxkart-data's music when installed)
    musdb:PATH         MUSDB18 (stems) or MUSDB18-HQ (wav) at PATH
    folder:PATH        any folder of wav/flac/ogg/opus/mp3 files

:func:`open_source` parses such a string and returns a :class:`~beafx.data.base.Source`.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .base import Source

#: The forms a source spec can take (for help texts and error messages).
SPEC_FORMS = ("synthetic", "debian-music", "musdb:PATH", "folder:PATH")

DEFAULT_SOURCE = "synthetic"


def parse_source(spec: str) -> tuple[str, str]:
    """Split ``spec`` into ``(kind, argument)``: ``("synthetic", "")``, ``("musdb", PATH)`` ...
    Raises ``ValueError`` for anything else."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a data source must be a non-empty string, one of {', '.join(SPEC_FORMS)}; got {spec!r}")
    spec = spec.strip()
    if spec in ("synthetic", "debian-music"):
        return spec, ""
    kind, sep, arg = spec.partition(":")
    if sep and kind in ("musdb", "folder"):
        if not arg.strip():
            raise ValueError(f"data source {spec!r} needs a path after '{kind}:' (e.g. {kind}:/data/music)")
        return kind, arg.strip()
    if sep and kind in ("synthetic", "debian-music"):
        raise ValueError(f"data source {kind!r} takes no argument; got {spec!r}")
    if Path(spec).exists():
        raise ValueError(f"unknown data source {spec!r}; to read that folder write folder:{spec} (or musdb:{spec})")
    raise ValueError(f"unknown data source {spec!r}; write one of {', '.join(SPEC_FORMS)}")


def open_source(spec: str = DEFAULT_SOURCE, *, seed: int = 0) -> Source:
    """Open the data source written ``spec`` (see the module docstring). ``seed`` fixes the
    folder split and the synthetic songs. Raises ``ValueError`` for a malformed spec and
    ``FileNotFoundError`` (saying how to get the data) for a missing one."""
    kind, arg = parse_source(spec)
    if kind == "synthetic":
        from .synthetic import SyntheticSource

        return SyntheticSource(seed=seed)
    if kind == "debian-music":
        from .debian import open_debian_music

        return open_debian_music(seed=seed)
    if kind == "musdb":
        from .musdb_source import MusdbSource

        return MusdbSource(arg, spec=spec.strip())
    from .folder import FolderSource

    return FolderSource(arg, seed=seed, spec=spec.strip())


@lru_cache(maxsize=8)
def open_source_cached(spec: str = DEFAULT_SOURCE, seed: int = 0) -> Source:
    """:func:`open_source`, remembered per process (folder and musdb sources scan and decode
    on opening)."""
    return open_source(spec, seed=seed)
