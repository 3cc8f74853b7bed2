"""``debian-music``: freely licensed real music installed from Debian/Ubuntu packages
(book chapter 07, ``book/07_data``).

Exactly two packages are used (adding another needs a decision recorded in an issue):

- ``warzone2100-music`` (about 84 MB, 30 pieces, about 4 h, Opus at 48 kHz stereo), installed
  under ``/usr/share/games/warzone2100/music``: the *Aftermath* and *Legacy* soundtracks by
  LupusMechanicus, CC-BY-SA-3.0 or later (alternatively GPL-2+), except
  ``track3_enhanced.opus`` (GPL-2+, derived from Martin Severn's original); the original
  1999 soundtrack by Martin Severn (``original_soundtrack/track1-3.opus``) and ``menu.opus``,
  GPL-2+ (the package's ``Files: *`` entry). See ``license.txt`` in each album folder and
  ``/usr/share/doc/warzone2100-music/copyright``.
- the music folder of ``supertuxkart-data`` (when installed; ``/usr/share/games/supertuxkart/
  data/music``, Ogg Vorbis, mostly CC-BY-SA-3.0, see ``/usr/share/doc/supertuxkart-data/
  copyright``). Its ``*_fast.ogg`` last-lap variants are split together with the piece they
  speed up, so no piece leaks across splits.

Install with ``make debian-music`` (``sudo apt-get install -y warzone2100-music``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .folder import FolderSource, list_audio_files, split_ignoring

#: Where the packages put their music (``BEAFX_DEBIAN_MUSIC_ROOT`` prefixes both, for tests).
WARZONE_MUSIC = Path("/usr/share/games/warzone2100/music")
SUPERTUXKART_MUSIC = Path("/usr/share/games/supertuxkart/data/music")

#: supertuxkart's last-lap variants (``x_fast.ogg``) are split with the piece they speed up.
FAST_VARIANT = r"_fast(?=\.[^.]+$)"

#: The licenses, as the README lists them.
LICENSES: dict[str, str] = {
    "warzone2100-music": (
        "Aftermath and Legacy soundtracks by LupusMechanicus: CC-BY-SA-3.0 or later (alternatively GPL-2+), "
        "except track3_enhanced (GPL-2+); original soundtrack by Martin Severn and menu.opus: GPL-2+ "
        "(Warzone 2100 Project)"
    ),
    "supertuxkart-data": "music by various artists, mostly CC-BY-SA-3.0 (see /usr/share/doc/supertuxkart-data/copyright)",
}

INSTALL_HELP = (
    "debian-music needs the Debian/Ubuntu package warzone2100-music (about 84 MB of freely licensed music): "
    "run `make debian-music` or `sudo apt-get install -y warzone2100-music` (on Colab: "
    "`!apt-get install -y warzone2100-music`). Optionally also install supertuxkart-data (628 MB). "
    "Other sources: `synthetic` (needs nothing), `folder:PATH`, `musdb:PATH`."
)


def _root(path: Path) -> Path:
    prefix = os.environ.get("BEAFX_DEBIAN_MUSIC_ROOT")
    return Path(prefix) / path.relative_to("/") if prefix else path


def music_folders() -> list[Path]:
    """The installed music folders among :data:`WARZONE_MUSIC` and :data:`SUPERTUXKART_MUSIC`."""
    return [p for p in (_root(WARZONE_MUSIC), _root(SUPERTUXKART_MUSIC)) if p.is_dir() and list_audio_files(p)]


def open_debian_music(*, seed: int = 0, progress: bool = True) -> FolderSource:
    """The ``debian-music`` source: a folder source over the installed music folders.
    Raises ``FileNotFoundError`` saying how to install ``warzone2100-music`` when it is absent."""
    if not _root(WARZONE_MUSIC).is_dir():
        raise FileNotFoundError(f"{_root(WARZONE_MUSIC)} not found. {INSTALL_HELP}")
    return FolderSource(
        music_folders(), seed=seed, spec="debian-music", key=split_ignoring(FAST_VARIANT), progress=progress
    )


def installed(root: Optional[Path] = None) -> bool:
    """Whether ``warzone2100-music`` is installed (so ``debian-music`` can be opened)."""
    return _root(WARZONE_MUSIC if root is None else root).is_dir()
