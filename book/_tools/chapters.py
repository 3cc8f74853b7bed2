"""Keep the chapters' generated parts in step with ``_config.yml``, and pair each chapter.

Every chapter (``book/*.md``, Jupytext MyST) starts with a hidden cell that installs beafx
on Colab only; its repository URL and git ref come from ``_config.yml``
(``repository.url`` and ``repository.branch``), the one place they are written, and
``repository.published`` says whether that URL is public yet. This script rewrites that
cell in every chapter of ``_toc.yml``, then writes the paired ``.ipynb`` (outputs
stripped) that the Colab buttons open.

    python book/_tools/chapters.py          # rewrite what is out of date
    python book/_tools/chapters.py --check  # exit 1 if anything is out of date

``tests/test_book_sources.py`` runs the check; ``tests/test_colab.py`` runs the cell.

The Colab cell installs ``beafx @ git+URL@REF`` with pip, or what the environment variable
``BEAFX_INSTALL_URL`` names instead (anything ``pip install`` takes: a ``git+https://`` or
``git+file://`` URL, a path, a wheel). While the repository is unpublished it installs only
from ``BEAFX_INSTALL_URL``. When it cannot install, it stops with one sentence saying what
to set (an exception whose IPython rendering is that sentence, not a traceback), so that
"Run all" stops there rather than at the first ``import beafx``.

The module is also a Sphinx extension (``_config.yml``, ``local_extensions``): while the
repository is unpublished, the Colab launch buttons read "Colab (once published)" and every
page carries a one-line banner saying that the Colab buttons work once it is published.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
MARK = "# Colab only: install beafx"
JUPYTEXT_FORMATS = "ipynb,md:myst"
#: The environment variable that replaces the repository as what the Colab cell installs.
INSTALL_ENV = "BEAFX_INSTALL_URL"
#: What the launch buttons and the banner say while ``repository.published`` is false.
ONCE_PUBLISHED = "once published"


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def repository() -> tuple[str, str]:
    """``(url, ref)`` of the book's repository, from ``_config.yml``."""
    repo = config()["repository"]
    url, ref = str(repo["url"]).rstrip("/"), str(repo.get("branch", "main"))
    if not re.fullmatch(r"https://[\w.-]+/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"_config.yml repository.url must look like https://host/owner/name, got {url!r}")
    return url, ref


def published() -> bool:
    """``repository.published`` of ``_config.yml``: is ``repository.url`` public yet?"""
    value = config()["repository"].get("published", False)
    if not isinstance(value, bool):
        raise ValueError(f"_config.yml repository.published must be true or false, got {value!r}")
    return value


def colab_cell_source(*, is_published: bool | None = None) -> str:
    """The source of the hidden first cell of every chapter (``is_published`` defaults to
    ``repository.published``)."""
    url, ref = repository()
    if is_published is None:
        is_published = published()
    spec = f"beafx @ git+{url}@{ref}"
    lines = [
        f"{MARK} from the book's repository (this cell is hidden in the book).",
        "import importlib.util",
        "import os",
        "import sys",
        "",
        'if "google.colab" in sys.modules and importlib.util.find_spec("beafx") is None:',
        "    import subprocess",
        "",
        "    class BeafxNotInstalled(Exception):",
        "        def _render_traceback_(self):  # IPython shows this one sentence, not a traceback",
        "            return [str(self)]",
        "",
        f"    how_to_fix = (\"set os.environ['{INSTALL_ENV}'] in a cell above to a pip source of beafx \"",
        '                  "(a git+https:// URL of a copy of its repository, a path or a wheel), then run this cell again.")',
    ]
    if is_published:
        lines += [
            f"    # {INSTALL_ENV}, if set, replaces the book's repository as what pip installs.",
            f'    source = os.environ.get("{INSTALL_ENV}") or "{spec}"',
        ]
    else:
        lines += [
            f"    # Once the repository is published: {spec}",
            f'    source = os.environ.get("{INSTALL_ENV}")',
            "    if not source:",
            '        raise BeafxNotInstalled("beafx cannot be installed here until its repository is published: " + how_to_fix)',
        ]
    lines += [
        '    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], capture_output=True,',
        '                         text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})',
        "    if pip.returncode != 0:",
        "        print(pip.stderr.strip()[-3000:])",
        '        raise BeafxNotInstalled(f"pip could not install beafx from {source} (its messages are above): " + how_to_fix)',
        "    importlib.invalidate_caches()",
    ]
    return "\n".join(lines)


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


_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?:.*?\n)??```\n", re.S | re.M)


def with_colab_cell(text: str) -> str:
    """``text`` (a chapter) with its first code cell replaced by, or preceded by, the Colab cell.

    Raises ValueError when that first cell is not closed before the next fence (a half-edited
    chapter): replacing it would swallow the text up to the next cell's end."""
    first = _CELL.search(text)
    if first and MARK in first.group(0):
        inner = first.group(0).splitlines()[1:-1]
        if any(line.startswith("```") for line in inner):
            raise ValueError("the Colab cell is not closed before the next code fence (```): fix it by hand")
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
    seen: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        # ids from the content, not random: re-pairing an unchanged chapter changes nothing
        base = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        cell.id = next(f"{base}-{k}" if k else base for k in range(len(nb.cells) + 1)
                       if (f"{base}-{k}" if k else base) not in seen)
        seen.add(cell.id)
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
        try:
            new = with_colab_cell(text)
        except ValueError as err:
            problems.append(f"{_rel(md)}: {err}")
            continue
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


# --------------------------------------------------------------------------- Sphinx extension
BANNER = (f"This book's repository is not published yet: the Colab buttons and the install cell of "
          f"each chapter work {ONCE_PUBLISHED}.")


def relabel_colab_buttons(context: dict) -> int:
    """Make the Colab launch buttons of one page (sphinx-book-theme's ``header_buttons``)
    say "once published"; returns how many were relabelled."""
    count = 0
    for group in context.get("header_buttons") or []:
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            if isinstance(button, dict) and "colab.research.google.com" in str(button.get("url", "")):
                button["text"] = f"Colab ({ONCE_PUBLISHED})"
                button["tooltip"] = f"Opens this notebook in Colab {ONCE_PUBLISHED} (the repository is not public yet)"
                count += 1
    return count


def _on_page(app, pagename, templatename, context, doctree) -> None:
    if not published():
        relabel_colab_buttons(context)


def _on_config(app, config) -> None:
    if not published():
        options = dict(config.html_theme_options or {})
        if not options.get("announcement"):  # html.announcement of _config.yml wins
            options["announcement"] = BANNER
        config.html_theme_options = options


def setup(app):
    """Sphinx entry point (``local_extensions`` in ``_config.yml``)."""
    app.connect("config-inited", _on_config)
    app.connect("html-page-context", _on_page, priority=600)  # after sphinx-book-theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


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
