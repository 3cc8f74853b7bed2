"""Decode audio once into a mono 44.1 kHz cache, then read any stretch of it by random access
(book chapter 07, ``book/07_data``).

Compressed files (Opus, Vorbis, MP3, MUSDB18's AAC stems) are slow to seek and decode, so
every file is decoded once: channels are averaged, the result is resampled to 44.1 kHz
(``scipy.signal.resample_poly``), scaled to a peak of 1 and stored as 16-bit integers
(``.npy``, opened later as a numpy memmap, so a crop reads only the pages it touches) next to a
small JSON record with the scale. The cache lives under ``$BEAFX_CACHE`` (default
``~/.cache/beafx``), never beside the source files, which may be read-only. Entries are keyed
by absolute path, size and modification time, and written atomically, so DataLoader workers
and concurrent runs can share it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy.signal import resample_poly

from ..profiles import SAMPLE_RATE

#: Bump when the cache format changes (old entries are then ignored).
CACHE_VERSION = 1

#: Frames read per block while mixing down to mono.
_BLOCK = 1 << 20

#: A decoder returns ``(audio (samples, channels) or (samples,), sample_rate)``.
Decoder = Callable[[], tuple[np.ndarray, int]]


class UnreadableAudio(ValueError):
    """An audio file that cannot be decoded (missing, unreadable, corrupt, not audio, empty).

    ``path`` is the file and ``reason`` says why, without the path (for lists of files)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read audio file {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def cannot_write(path: Path, err: BaseException, hint: str = "") -> OSError:
    """A one-line ``OSError("cannot write PATH: reason[; hint]")`` for a failed write (the CLI
    prints it as it is); ``err`` is the original error (an ``OSError`` gives its ``strerror``)."""
    reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return OSError(f"cannot write {path}: {reason}" + (f"; {hint}" if hint else ""))


def cache_root() -> Path:
    """``$BEAFX_CACHE`` or ``~/.cache/beafx``."""
    raw = os.environ.get("BEAFX_CACHE")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "beafx"


def audio_cache_dir() -> Path:
    return cache_root() / f"audio-v{CACHE_VERSION}"


def check_outside(folder: Path) -> None:
    """Raise ``ValueError`` if the cache would be written inside ``folder`` (a source folder)."""
    cache = audio_cache_dir().resolve()
    folder = Path(folder).resolve()
    if cache == folder or folder in cache.parents:
        raise ValueError(
            f"the beafx cache ({cache}) is inside the source folder {folder}; the cache must never be "
            "written into a source folder: set BEAFX_CACHE to a folder outside it"
        )


def _key(path: Path) -> str:
    try:
        st = path.stat()
    except OSError as err:
        raise UnreadableAudio(path, err.strerror or str(err)) from err
    text = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{SAMPLE_RATE}|v{CACHE_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of ``(samples, channels)`` audio (any channel count) to ``(samples,)``."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio.astype(np.float32, copy=False)
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise ValueError(f"expected (samples, channels) audio, got shape {audio.shape}")
    return audio.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of mono ``x`` from ``rate`` to ``target`` Hz (identity if equal)."""
    if rate == target:
        return x
    if rate <= 0:
        raise ValueError(f"invalid sample rate {rate}")
    g = math.gcd(int(rate), int(target))
    return resample_poly(x, target // g, int(rate) // g).astype(np.float32)


def resampled_length(frames: int, rate: int, target: int = SAMPLE_RATE) -> int:
    """Length of ``frames`` samples at ``rate`` after :func:`resample` to ``target``."""
    g = math.gcd(int(rate), int(target))
    up, down = target // g, int(rate) // g
    return -(-frames * up // down)


def decode_file(path: Path) -> tuple[np.ndarray, int]:
    """Decode an audio file with soundfile, mixed down to mono block by block:
    ``(float32 (samples,), sample_rate)``. Raises ``ValueError`` naming the file if it cannot
    be read (:class:`UnreadableAudio`, a ``ValueError``)."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as fh:
            rate = fh.samplerate
            blocks = [to_mono(b) for b in fh.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True)]
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError) as err:
        raise UnreadableAudio(path, _os_reason(path) or _decoder_reason(err)) from err
    if not blocks:
        raise UnreadableAudio(path, "it contains no samples")
    return np.concatenate(blocks), rate


def _os_reason(path: Path) -> Optional[str]:
    """Why the OS cannot open ``path`` for reading (libsndfile only says "System error"), or None."""
    try:
        with open(path, "rb"):
            return None
    except OSError as err:
        return err.strerror or str(err)


def _decoder_reason(err: BaseException) -> str:
    """libsndfile's reason without the path; for data it does not recognise, libsndfile 1.2
    says "File does not exist or is not a regular file" (the OS opened it fine)."""
    text = getattr(err, "error_string", None) or str(err)
    if "does not exist" in text:
        return "not audio that libsndfile can decode (format not recognised, or the file is damaged)"
    return text


@dataclass(frozen=True)
class CachedAudio:
    """A cache entry: ``path`` of the int16 ``.npy``, ``num_samples`` at 44.1 kHz and the
    ``scale`` that maps int16 back to the file's level."""

    path: Path
    num_samples: int
    scale: float

    def read(self, start: int, length: int, mmap: Optional[np.ndarray] = None) -> np.ndarray:
        """Samples ``[start, start + length)`` as float32 (``mmap``: an already opened memmap)."""
        data = np.load(self.path, mmap_mode="r") if mmap is None else mmap
        return data[start : start + length].astype(np.float32) * np.float32(self.scale)

    def open(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write ``target`` through a temporary file in its folder; a failure raises a one-line
    ``OSError`` (:func:`cannot_write`) that says how to move the cache."""
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        os.close(fd)
        write(Path(tmp))
        os.replace(tmp, target)
    except OSError as err:
        raise cannot_write(target, err, "set BEAFX_CACHE to a writable folder with free space") from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def cached(path: Path, decoder: Optional[Decoder] = None) -> CachedAudio:
    """The cache entry of audio file ``path``, decoding it first if needed (``decoder``
    defaults to :func:`decode_file`). Raises :class:`UnreadableAudio` for a file that cannot be
    decoded and a one-line ``OSError`` when the cache cannot be written."""
    path = Path(path)
    key = _key(path)
    folder = audio_cache_dir()
    npy, meta = folder / f"{key}.npy", folder / f"{key}.json"
    if meta.exists() and npy.exists():
        try:
            record = json.loads(meta.read_text())
            return CachedAudio(npy, int(record["num_samples"]), float(record["scale"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged record (e.g. a full disk): decode again and replace it
    audio, rate = decoder() if decoder is not None else decode_file(path)
    mono = resample(to_mono(audio), int(rate))
    if mono.size == 0:
        raise UnreadableAudio(path, "it contains no samples")
    peak = float(np.max(np.abs(mono)))
    scale = peak / 32767.0 if peak > 0 else 1.0
    ints = np.clip(np.round(mono / scale), -32767, 32767).astype(np.int16)
    _atomic_write(npy, lambda tmp: np.save(tmp, ints))
    record = {"source": str(path.resolve()), "source_rate": int(rate), "num_samples": int(ints.size), "scale": scale}
    _atomic_write(meta, lambda tmp: tmp.write_text(json.dumps(record)))
    return CachedAudio(npy, int(ints.size), scale)
