"""Atomic file writes: a reader (another process, a resumed run, a grid process beside this one)
sees the old file or the new one, never half of one."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, Path]


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (named after this process, so two processes never
    share it) to write to; when the block ends without error it replaces ``path``, otherwise it is
    removed and ``path`` is left as it was. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: PathLike, data: dict, *, indent: int = 2) -> Path:
    """Write ``data`` as JSON (sorted keys, ``indent``, final newline) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=True) + "\n")
