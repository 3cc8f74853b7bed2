"""Every chapter's paired notebook runs in a Jupyter kernel under the ``smoke`` profile.

This is what a reader does in Jupyter or Colab: open ``book/NN_topic.ipynb`` and run all.
Each notebook runs in a fresh kernel with the working directory ``book/`` (as in the book
build), the live-widget cells (``skip-execution``) excepted: ``tests/test_book_live.py`` drives
those in JupyterLab. A cell error or any stderr output fails the test. Results the chapters
compute (the ``smoke`` experiments) go to a scratch results folder, not the repository's.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from book_tool import chapters

ROOT = Path(__file__).resolve().parents[1]


def _runner():
    spec = importlib.util.spec_from_file_location("run_chapter", ROOT / "tests" / "run_chapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory):
    """BEAFX_PROFILE=smoke, a scratch results folder shared by the chapters of this module."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BEAFX_PROFILE", "smoke")
    mp.setenv("BEAFX_PROGRESS", "0")
    mp.setenv("BEAFX_RESULTS", str(tmp_path_factory.mktemp("results")))
    mp.delenv("BEAFX_MAX_STEPS", raising=False)
    yield
    mp.undo()


@pytest.mark.parametrize("md", chapters.chapters(), ids=lambda p: p.stem)
def test_chapter_notebook_runs_under_smoke(smoke_env, md):
    notebook = md.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} missing: run `python book/_tools/chapters.py`"
    seconds, problems = _runner().run_chapter(notebook)
    assert not problems, f"{notebook.name} ({seconds:.0f} s):\n" + "\n".join(problems)
