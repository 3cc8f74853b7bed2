"""Execute book chapters as a Jupyter user would, and fail on a cell error or on stderr.

    cd book && ../.venv/bin/python ../tests/run_chapter.py 07_data.md [08_encoders.md ...]

Each chapter (its MyST markdown, or its paired ``.ipynb``) runs in a fresh kernel with the
working directory ``book/``, cells tagged ``skip-execution`` excepted (the live widgets, as in
the book build). Prints the time per chapter; exits 1 if a cell raised or wrote to stderr (the
book build turns stderr into a warning, an error in CI). ``tests/test_book_notebooks.py`` uses
:func:`run_chapter` on every chapter's ``.ipynb``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1] / "book"


def run_chapter(path: Path, timeout: int = 600) -> tuple[float, list[str]]:
    """Execute one chapter; returns ``(seconds, problems)`` where problems lists cell errors and
    stderr outputs (cell index and the first lines)."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = jupytext.read(path)
    skipped = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "skip-execution" in cell.metadata.get("tags", []):
            skipped[i] = cell.source
            cell.source = ""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}})
    problems: list[str] = []
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        problems.append(f"cell error: {str(err).strip()[-2000:]}")
    seconds = time.perf_counter() - start
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                problems.append(f"cell {i} wrote to stderr: {out.get('text', '')[:600]}")
    return seconds, problems


def main(argv: list[str]) -> int:
    failed = False
    for name in argv:
        path = Path(name)
        if not path.is_absolute() and not path.exists():
            path = BOOK / name
        seconds, problems = run_chapter(path)
        print(f"{path.name}: {seconds:.1f} s, {'OK' if not problems else 'FAILED'}")
        for p in problems:
            print("  " + p.replace("\n", "\n  "))
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
