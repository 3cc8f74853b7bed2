"""Two short excerpts of real, freely licensed music for demos, widgets and the book.

They ship inside the package (``beafx/data/assets/*.ogg``, each with its attribution in a
``.txt`` beside it), so the book's listening examples also work in Colab after
``pip install``. Both are already mixed *and mastered* recordings: in the book they play the
role of the "dry mix" that a further mastering chain processes.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Optional

import numpy as np
import torch
from torch import Tensor

SAMPLE_RATE = 44100


@dataclass(frozen=True)
class Excerpt:
    """An embedded excerpt: file name, title, artist, license and source."""

    name: str
    filename: str
    title: str
    artist: str
    license: str
    license_url: str
    source_url: str
    start_in_original: str

    @property
    def attribution_html(self) -> str:
        """The credit line with links, for web pages."""
        return (
            f"\u201c<a href=\"{self.source_url}\">{self.title}</a>\u201d by {self.artist} "
            f"({self.start_in_original} excerpt), <a href=\"{self.license_url}\">{self.license}</a>"
        )

    @property
    def attribution(self) -> str:
        """One line of credit, as the CC-BY license asks."""
        return (
            f"\u201c{self.title}\u201d by {self.artist} ({self.start_in_original} excerpt), "
            f"{self.license} ({self.license_url}), from {self.source_url}"
        )


EXCERPTS: dict[str, Excerpt] = {
    "vibe_ace": Excerpt(
        "vibe_ace", "vibe_ace.ogg", "Vibe Ace", "Kevin MacLeod", "CC-BY 3.0",
        "https://creativecommons.org/licenses/by/3.0/",
        "https://freemusicarchive.org/music/Kevin_MacLeod/Jazz_Sampler/Vibe_Ace", "0:14-0:29",
    ),
    "lets_go_fishin": Excerpt(
        "lets_go_fishin", "lets_go_fishin.ogg", "Let's Go Fishin'", "Karissa Hobbs", "CC-BY 3.0",
        "https://creativecommons.org/licenses/by/3.0/",
        "https://freemusicarchive.org/music/Karissa_Hobbs/Age_of_Flowers/09_Lets_Go_Fishin", "0:20-0:35",
    ),
}


def load(
    name: str = "vibe_ace",
    *,
    start: float = 0.0,
    seconds: Optional[float] = None,
    mono: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The excerpt ``name`` as a ``(1, channels, samples)`` tensor at 44.1 kHz.

    ``start`` and ``seconds`` crop it (in seconds); ``mono=True`` averages the channels.
    """
    import soundfile as sf

    if name not in EXCERPTS:
        raise ValueError(f"unknown excerpt {name!r}; excerpts: {', '.join(EXCERPTS)}")
    if start < 0 or (seconds is not None and seconds <= 0):
        raise ValueError(f"need start >= 0 and seconds > 0, got start={start}, seconds={seconds}")
    path = resources.files("beafx") / "data" / "assets" / EXCERPTS[name].filename
    with resources.as_file(path) as p:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:  # pragma: no cover - the assets are 44.1 kHz
        raise ValueError(f"{name}: expected {SAMPLE_RATE} Hz, file has {sr} Hz")
    a = int(round(start * sr))
    b = data.shape[0] if seconds is None else a + int(round(seconds * sr))
    if b > data.shape[0] or a >= data.shape[0]:
        raise ValueError(
            f"{name} lasts {data.shape[0] / sr:.2f} s; cannot take [{start}, {b / sr:.2f}] s from it"
        )
    x = np.ascontiguousarray(data[a:b].T)
    if mono:
        x = x.mean(axis=0, keepdims=True)
    return torch.from_numpy(x).to(dtype).unsqueeze(0)
