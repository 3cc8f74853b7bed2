"""``musdb:PATH``: MUSDB18 (stems) or MUSDB18-HQ (wav) mixtures, with the official
86/14/50 split, through the ``musdb`` package (book chapter 07, ``book/07_data``).

The paper trains on MUSDB18 mixtures. The format is detected from the folder: MUSDB18-HQ has
``train/<track>/mixture.wav``, MUSDB18 has ``train/<track>.stem.mp4``. ``musdb`` (imported
only here, only when such a source is opened: it needs the ``ffmpeg`` binary even for wav)
lists the tracks and applies the official train/valid split (``subsets="train"``,
``split="train"|"valid"``) and the test subset. Wav mixtures are read by random access with
soundfile; stem files are decoded once by musdb into the mono 44.1 kHz cache
(:mod:`beafx.data.cache`), since seeking in AAC is slow. Any channel count is averaged to mono.
The 7 s previews (``musdb.DB(download=True)``) work too: the dataset pads clips longer than a
track and warns.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from .base import OFFICIAL_COUNTS, SPLITS, MissingDependencyError, Source, Track, check_split
from .cache import CachedAudio, cached
from ..profiles import SAMPLE_RATE

HELP = """\
How to get MUSDB18 (150 full tracks, for research use):
  - MUSDB18 (stems, .stem.mp4, 4.7 GB): https://zenodo.org/records/1117372 (request access on Zenodo,
    then download and unzip); MUSDB18-HQ (uncompressed wav, 30 GB): https://zenodo.org/records/3338373.
    Point beafx at the folder that contains train/ and test/: musdb:/path/to/musdb18hq
  - 7 s previews (no request needed, needs internet): python -c "import musdb; musdb.DB(download=True)"
    then use musdb:~/MUSDB18/MUSDB18-7
  - In Colab, put the unzipped dataset in your Google Drive and mount it:
        from google.colab import drive; drive.mount('/content/drive')
    then use musdb:/content/drive/MyDrive/musdb18hq
Other sources need no download: synthetic (the default), debian-music (make debian-music),
folder:PATH (any folder of wav/flac/ogg/opus/mp3)."""

#: (musdb subsets, musdb split) of each beafx split.
_MUSDB_SPLITS = {"train": ("train", "train"), "valid": ("train", "valid"), "test": ("test", None)}


def import_musdb():
    """Import ``musdb``, turning its ffmpeg check into a clear :class:`MissingDependencyError`."""
    try:
        import musdb  # noqa: F401 - imported for its side effects and returned
    except ImportError as err:
        raise MissingDependencyError(f"musdb:PATH needs the musdb package: pip install musdb ({err})") from err
    except RuntimeError as err:  # stempeg raises RuntimeError when ffmpeg/ffprobe are missing
        raise MissingDependencyError(
            "musdb:PATH needs the ffmpeg and ffprobe programs (musdb reads audio through stempeg, even wav): "
            "sudo apt-get install ffmpeg, or conda install -c conda-forge ffmpeg (Colab has it). "
            f"Original error: {err}"
        ) from err
    return musdb


def detect_format(root: Path) -> bool:
    """``True`` for MUSDB18-HQ (wav), ``False`` for MUSDB18 stems. Raises ``FileNotFoundError``
    (with :data:`HELP`) if ``root`` is not a MUSDB18 folder."""
    if not root.exists():
        raise FileNotFoundError(f"musdb:{root}: folder not found.\n{HELP}")
    subsets = [root / s for s in ("train", "test") if (root / s).is_dir()]
    if not subsets:
        raise FileNotFoundError(
            f"musdb:{root}: not a MUSDB18 folder (expected train/ and test/ sub-folders).\n{HELP}"
        )
    has_wav = any((d / "mixture.wav").is_file() for s in subsets for d in s.iterdir() if d.is_dir())
    has_stems = any(f.name.endswith(".stem.mp4") for s in subsets for f in s.iterdir())
    if has_wav and has_stems:
        raise ValueError(f"musdb:{root} holds both wav tracks and .stem.mp4 files; keep one format per folder")
    if not (has_wav or has_stems):
        raise FileNotFoundError(
            f"musdb:{root}: no tracks found (neither <subset>/<track>/mixture.wav nor <subset>/<track>.stem.mp4).\n{HELP}"
        )
    return has_wav


class MusdbSource(Source):
    """MUSDB18 or MUSDB18-HQ mixtures at ``root`` (``is_wav=None``: detect the format)."""

    def __init__(self, root: Path | str, *, is_wav: Optional[bool] = None, spec: Optional[str] = None) -> None:
        self.root = Path(root).expanduser()
        self.spec = spec or f"musdb:{root}"
        detected = detect_format(self.root)
        self.is_wav = detected if is_wav is None else bool(is_wav)
        musdb = import_musdb()
        self._files: dict[str, list[Path]] = {}
        self._tracks: dict[str, list[Track]] = {}
        self._entries: dict[str, list[Optional[CachedAudio]]] = {}
        for split in SPLITS:
            subsets, musdb_split = _MUSDB_SPLITS[split]
            db = musdb.DB(root=str(self.root), subsets=subsets, split=musdb_split, is_wav=self.is_wav)
            files, tracks, entries = [], [], []
            for mt in db.tracks:
                path = Path(mt.path)
                entry = self._entry(mt, path)
                n = entry.num_samples if entry is not None else _wav_frames(path)
                files.append(path)
                tracks.append(Track(mt.name, n))
                entries.append(entry)
            self._files[split], self._tracks[split], self._entries[split] = files, tracks, entries
        counts = {s: len(self._tracks[s]) for s in SPLITS}
        if counts != OFFICIAL_COUNTS:
            warnings.warn(
                f"{self.spec}: {counts['train']}/{counts['valid']}/{counts['test']} train/valid/test tracks, not "
                "MUSDB18's 86/14/50 (a subset, the 7 s previews, or a modified copy?)",
                stacklevel=2,
            )
        if not any(counts.values()):
            raise FileNotFoundError(f"{self.spec}: musdb found no tracks.\n{HELP}")
        self._open: dict[tuple[str, int], object] = {}

    def _entry(self, mt, path: Path) -> Optional[CachedAudio]:
        """Cache entry for stems (decoded by musdb) and wav files not at 44.1 kHz; None for direct reads."""
        if self.is_wav:
            import soundfile as sf

            try:
                info = sf.info(str(path))
            except (sf.LibsndfileError, RuntimeError) as err:
                raise ValueError(f"{self.spec}: cannot read {path}: {err}") from err
            if info.samplerate == SAMPLE_RATE:
                return None
            return cached(path)

        def decode():
            mt.chunk_start, mt.chunk_duration = 0, None
            audio = mt.audio  # (samples, channels), decoded by stempeg/ffmpeg
            return np.asarray(audio, dtype=np.float32), int(mt.rate)

        try:
            return cached(path, decode)
        except Exception as err:  # ffmpeg errors come in many types
            raise ValueError(f"{self.spec}: cannot decode {path}: {err}") from err

    def tracks(self, split: str) -> list[Track]:
        return self._tracks[check_split(split)]

    def path(self, split: str, index: int) -> Path:
        """The mixture file behind track ``index`` of ``split``."""
        return self._files[check_split(split)][index]

    def _read(self, split: str, index: int, start: int, length: int) -> np.ndarray:
        entry = self._entries[split][index]
        if entry is not None:
            key = (split, index)
            if key not in self._open:
                self._open[key] = entry.open()
            return entry.read(start, length, self._open[key])
        import soundfile as sf

        audio, _ = sf.read(str(self._files[split][index]), start=start, frames=length, dtype="float32", always_2d=True)
        return audio.mean(axis=1)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = {}
        return state


def _wav_frames(path: Path) -> int:
    import soundfile as sf

    return int(sf.info(str(path)).frames)


def ffmpeg_available() -> bool:
    """Whether ffmpeg and ffprobe are on PATH (musdb needs both)."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
