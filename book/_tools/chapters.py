"""Keep the chapters' generated parts in step with ``_config.yml``, and pair each chapter.

Every chapter (``book/*.md``, Jupytext MyST) starts with a hidden cell that installs beafx
on Colab only; its repository URL and git ref come from ``_config.yml``
(``repository.url`` and ``repository.branch``), the one place they are written. This
script rewrites that cell in every chapter of ``_toc.yml``, then writes the paired
``.ipynb`` (outputs stripped) that the Colab buttons open.

    python book/_tools/chapters.py          # rewrite what is out of date
    python book/_tools/chapters.py --check  # exit 1 if anything is out of date

``tests/test_book_sources.py`` runs the check.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
MARK = "# Colab only: install beafx"
JUPYTEXT_FORMATS = "ipynb,md:myst"


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def repository() -> tuple[str, str]:
    """``(url, ref)`` of the book's repository, from ``_config.yml``."""
    repo = config()["repository"]
    url, ref = str(repo["url"]).rstrip("/"), str(repo.get("branch", "main"))
    if not re.fullmatch(r"https://[\w.-]+/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"_config.yml repository.url must look like https://host/owner/name, got {url!r}")
    return url, ref


def colab_cell_source() -> str:
    """The source of the hidden first cell of every chapter."""
    url, ref = repository()
    return (
        f"{MARK} from the book's repository (this cell is hidden in the book).\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    spec = "beafx @ git+{url}@{ref}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", spec], check=True)'
    )


def colab_cell_markdown() -> str:
    return "```{code-cell} ipython3\n:tags: [remove-cell]\n\n" + colab_cell_source() + "\n```\n"


def chapters() -> list[Path]:
    """The ``.md`` source of every page of ``_toc.yml``, root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)

    walk(toc)
    return [BOOK / f"{n}.md" for n in names]


_CELL = re.compile(r"```\{code-cell\}[^\n]*\n(?:.*?\n)?```\n", re.S)


def with_colab_cell(text: str) -> str:
    """``text`` (a chapter) with its first code cell replaced by, or preceded by, the Colab cell."""
    first = _CELL.search(text)
    if first and MARK in first.group(0):
        return text[: first.start()] + colab_cell_markdown() + text[first.end():]
    if not text.startswith("---\n"):
        raise ValueError("a chapter must start with Jupytext front matter (---)")
    end = text.index("\n---\n", 4) + len("\n---\n")
    return text[:end] + "\n" + colab_cell_markdown() + text[end:]


def cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    """What must agree between the two twins: cell type, source and tags."""
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def paired_notebook(md: Path):
    import jupytext

    nb = jupytext.read(md)
    nb.metadata.setdefault("jupytext", {})["formats"] = JUPYTEXT_FORMATS
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def sync(check: bool = False) -> list[str]:
    """Bring every chapter up to date (or, with ``check``, list what is out of date)."""
    import jupytext

    problems = []
    for md in chapters():
        if not md.exists():
            problems.append(f"{_rel(md)} is in _toc.yml but does not exist")
            continue
        text = md.read_text()
        new = with_colab_cell(text)
        if new != text:
            problems.append(f"{_rel(md)}: the Colab cell differs from _config.yml")
            if not check:
                md.write_text(new)
        ipynb = md.with_suffix(".ipynb")
        want = paired_notebook(md)
        have = jupytext.read(ipynb) if ipynb.exists() else None
        stale = have is None or cells(have) != cells(want) or any(
            c.cell_type == "code" and (c.outputs or c.execution_count is not None) for c in have.cells
        )
        if stale:
            problems.append(f"{_rel(ipynb)} is missing, out of sync with its .md, or has outputs")
            if not check:
                jupytext.write(want, ipynb, fmt="ipynb")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing, exit 1 if out of date")
    args = parser.parse_args(argv)
    problems = sync(check=args.check)
    for p in problems:
        print(("out of date: " if args.check else "updated: ") + p)
    return 1 if (args.check and problems) else 0


if __name__ == "__main__":
    sys.exit(main())
