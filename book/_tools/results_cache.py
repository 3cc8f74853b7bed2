"""Keep the book's execution cache from serving stale results (run by `make book` first).

Jupyter Book re-executes a chapter only when its code changes (``execute_notebooks: cache``),
but some chapters show results read from files (``results/<profile>/``, the proxy's
evaluations, the demo models) and every chapter that trains depends on ``BEAFX_PROFILE``.
Before a build this script compares a key of what the chapters read with the key stored by
the previous build (``book/_build/.results_key.json``):

- the profile changed: the whole execution cache is cleared (every chapter may depend on it);
- the results changed: the cached executions of the chapters that read results (those whose
  source mentions ``book_results``, ``results/`` or a demo model) are removed, so they run again.

Sphinx re-reads only the sources it sees changed, so the chapters whose executions were removed
are also touched (their modification time only): Sphinx reads them again and myst-nb, finding
no cached execution, runs them.

    python book/_tools/results_cache.py          # BEAFX_PROFILE (default cpu) decides the profile
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
CACHE = BOOK / "_build" / ".jupyter_cache"
KEY_FILE = BOOK / "_build" / ".results_key.json"
#: What the result-reading chapters read (relative to the repository root).
READ = ("results/{profile}", "results/proxy", "beafx/models", "beafx/effects/weights")
#: A chapter whose source contains one of these reads results.
MARKERS = ("book_results", "results/", "demo:", "load_model(")


def results_key(profile: str) -> str:
    h = hashlib.sha256(profile.encode())
    for pattern in READ:
        folder = ROOT / pattern.format(profile=profile)
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".json", ".csv", ".pt", ".md") and "checkpoints" not in path.parts:
                h.update(str(path.relative_to(ROOT)).encode())
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:20]


def reading_chapters() -> list[Path]:
    return sorted(p for p in BOOK.glob("*.md") if any(m in p.read_text() for m in MARKERS))


def refresh(profile: str, log=print) -> str:
    """Clear what is stale in the execution cache for a build under ``profile``; returns what
    was done (``"none"``, ``"all"`` or ``"results"``)."""
    key = results_key(profile)
    old = json.loads(KEY_FILE.read_text()) if KEY_FILE.is_file() else {}
    done = "none"
    if CACHE.is_dir() and old:
        if old.get("profile") != profile:
            shutil.rmtree(CACHE)
            for md in BOOK.glob("*.md"):
                md.touch()
            done = "all"
            log(f"results_cache: profile {old.get('profile')} -> {profile}: execution cache cleared")
        elif old.get("key") != key:
            from jupyter_cache import get_cache

            cache = get_cache(str(CACHE))
            stale = {str(p.resolve()) for p in reading_chapters()}
            removed = 0
            for record in cache.list_project_records():
                if str(Path(record.uri).resolve()) in stale:
                    cache.remove_nb_from_project(record.pk)
                    removed += 1
            for record in cache.list_cache_records():
                if str(Path(record.uri).resolve()) in stale:
                    cache.remove_cache(record.pk)
            for md in reading_chapters():
                md.touch()
            done = "results"
            log(f"results_cache: results changed: {removed} chapter(s) will run again")
    KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    KEY_FILE.write_text(json.dumps({"profile": profile, "key": key}))
    return done


if __name__ == "__main__":
    refresh(os.environ.get("BEAFX_PROFILE", "cpu"))
    sys.exit(0)
