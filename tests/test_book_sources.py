"""The book's sources: config, chapter pairs in sync, Colab cell single-sourced, chapter contents."""
import re
from pathlib import Path

import pytest
import yaml
from book_tool import chapters

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


PAGES = chapters.chapters()


def test_book_config_links_and_settings():
    assert (BOOK / "_config.yml").is_symlink() and (BOOK / "_config.yml").resolve() == ROOT / "_config.yml"
    assert (BOOK / "_toc.yml").is_symlink() and (BOOK / "_toc.yml").resolve() == ROOT / "_toc.yml"
    cfg = chapters.config()
    ex = cfg["execute"]
    assert ex["execute_notebooks"] == "cache" and ex["raise_on_error"] is True
    assert cfg["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert isinstance(ex["timeout"], int) and 0 < ex["timeout"] <= 600
    assert ex["stderr_output"] == "remove-warn"  # stderr never on a page; a warning (error in CI)
    assert cfg["launch_buttons"]["thebe"] is False
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "**.ipynb" in cfg["exclude_patterns"]  # only the .md twin is parsed


def test_javascript_is_vendored_not_fetched_from_a_cdn():
    sphinx = chapters.config()["sphinx"]["config"]
    static = [BOOK / p for p in sphinx["html_static_path"]]
    assert all(p.is_dir() and p.name != "_static" for p in static)
    mathjax = sphinx["mathjax_path"]
    assert not mathjax.startswith(("http:", "https:", "//"))
    assert any((p / mathjax).is_file() for p in static)
    assert any((p / "mathjax/output/chtml/fonts/woff-v2").is_dir() for p in static)
    for js in sphinx["nb_ipywidgets_js"]:
        assert not js.startswith(("http:", "https:", "//")), js
        assert any((p / js).is_file() for p in static), js
    embed = next(p / "html-manager/embed.js" for p in static if (p / "html-manager/embed.js").is_file())
    for font in re.findall(r'"([0-9a-f]{20}\.woff2)"', embed.read_text(errors="ignore")):
        assert (embed.parent / font).is_file(), font


def test_every_page_of_the_toc_is_a_paired_chapter_in_sync():
    assert PAGES and PAGES[0].name == "index.md"
    problems = chapters.sync(check=True)
    assert not problems, "run `python book/_tools/chapters.py`:\n" + "\n".join(problems)


def test_sync_check_detects_a_stale_notebook(tmp_path, monkeypatch):
    import jupytext

    md = PAGES[-1]
    nb = chapters.paired_notebook(md)
    nb.cells[-1].source += "\n# edited"
    stale = tmp_path / md.name
    stale.write_text(md.read_text())
    jupytext.write(nb, stale.with_suffix(".ipynb"), fmt="ipynb")
    monkeypatch.setattr(chapters, "chapters", lambda: [stale])
    assert any("out of sync" in p for p in chapters.sync(check=True))


@pytest.mark.parametrize("md", PAGES, ids=lambda p: p.stem)
def test_chapter_starts_with_the_colab_install_cell_from_config(md):
    import jupytext

    url, ref = chapters.repository()
    nb = jupytext.read(md)
    first = nb.cells[0]
    assert first.cell_type == "code" and "remove-cell" in first.metadata.get("tags", [])
    assert first.source.strip() == chapters.colab_cell_source().strip()
    assert f"git+{url}@{ref}" in first.source and '"google.colab" in sys.modules' in first.source
    ipynb = jupytext.read(md.with_suffix(".ipynb"))
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in ipynb.cells if c.cell_type == "code")


@pytest.mark.parametrize("md", PAGES, ids=lambda p: p.stem)
def test_chapter_has_what_a_chapter_needs(md):
    text = md.read_text()
    code = "\n".join(re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S))
    assert re.search(r"^\s*(import beafx|from beafx)", code, re.M), "imports beafx"
    assert re.search(r"\{src\}`beafx/[\w/]+\.py`", text), "links the module that implements it"
    assert re.search(r"(plt\.show\(\)|static_twin\(|figure1\()", code), "draws a figure"
    assert re.search(r"(player|players|static_twin)\(", code), "plays audio"
    assert md.stem == "index" or re.search(r"^## Exercises", text, re.M), "has exercises"
    for path in re.findall(r"\{src\}`([^`]+)`", text):
        assert (ROOT / path).exists(), path


def test_github_pages_workflow_builds_and_publishes_the_book():
    wf = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    steps = [s for job in wf["jobs"].values() for s in job.get("steps", [])]
    runs = "\n".join(s.get("run", "") for s in steps)
    uses = [s.get("uses", "") for s in steps]
    assert "make book" in runs
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    assert any(u.startswith("actions/deploy-pages") for u in uses)


def _code_cells(md):
    import jupytext

    return [c for c in jupytext.read(md).cells if c.cell_type == "code"]


@pytest.mark.parametrize("md", PAGES, ids=lambda p: p.stem)
def test_every_glued_number_in_the_prose_is_computed_on_the_page(md):
    text = md.read_text()
    prose = re.sub(r"```\{code-cell\}.*?\n```", "", text, flags=re.S)
    used = {m.split(":")[0] for m in re.findall(r"\{glue:text\}`([^`]+)`", prose)}
    code = "\n".join(c.source for c in _code_cells(md))
    literal = set(re.findall(r"glue\(\s*\"([\w]+)\"", code))
    patterns = [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", r"[^_]+(?:_[^_]+)*?", re.escape(p)) + "$")
                for p in re.findall(r"glue\(\s*f\"([^\"]+)\"", code)]
    missing = sorted(k for k in used if k not in literal and not any(p.match(k) for p in patterns))
    assert not missing, f"{md.name}: prose quotes glue keys that no cell computes: {missing}"
    assert not re.search(r"\{glue:text\}`[^`]*\}", text), "a glue role closed with } instead of `"


@pytest.mark.parametrize("md", PAGES, ids=lambda p: p.stem)
def test_live_widgets_run_in_jupyter_and_their_static_twin_stands_in_the_book(md):
    cells = _code_cells(md)
    for i, cell in enumerate(cells):
        found = re.search(r"widgets\.widget\(\s*\"(\w+)\"", cell.source)
        if not found:
            continue
        tags = cell.metadata.get("tags", [])
        assert "remove-cell" in tags and "skip-execution" in tags, f"{md.name}: live widget cell {i} is not hidden"
        assert f'static_twin("{found.group(1)}"' in cells[i - 1].source, \
            f"{md.name}: the live {found.group(1)} widget does not follow its static twin"


@pytest.mark.parametrize("md", PAGES[1:], ids=lambda p: p.stem)
def test_exercises_have_collapsed_hints_or_solutions(md):
    text = md.read_text()
    exercises = text[text.index("## Exercises"):]
    numbered = re.findall(r"^\d+\. \*\*", exercises, re.M)
    # MyST's backtick fence or its colon fence (colon_fence is enabled in _config.yml)
    dropdowns = re.findall(r"(?:```|:::)\{admonition\} [^\n]+\n\s*:class: dropdown", exercises)
    assert numbered and len(dropdowns) == len(numbered), f"{md.name}: {len(numbered)} exercises, {len(dropdowns)} dropdowns"


def test_the_glossary_defines_the_words_the_chapters_borrow():
    text = (BOOK / "index.md").read_text()
    glossary = text[text.index("```{glossary}"):]
    glossary = glossary[: glossary.index("\n```\n")]
    terms = {line.strip() for line in glossary.splitlines()[1:] if line and not line.startswith(" ")}
    assert {"dBFS", "crest factor", "Q", "threshold", "ratio", "knee", "attack", "release", "drive",
            "hardness"} <= terms
    for md in PAGES:
        for term in re.findall(r"\{term\}`([^`<]+)`", md.read_text()):
            assert term.strip() in terms, f"{md.name}: {{term}}`{term}` is not in the glossary"
