"""The book's helper script ``book/_tools/chapters.py``, loaded once for the book tests."""
import importlib.util
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1] / "book"


def _load():
    spec = importlib.util.spec_from_file_location("chapters", BOOK / "_tools" / "chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chapters = _load()
