"""What the book's chapters read: ``book_results`` (load, or compute what fits the build) and
the execution-cache refresh of ``book/_tools/results_cache.py``."""
from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest

from beafx import profiles
from beafx.experiments import book, book_results
from beafx.experiments.plan import make_plan

ROOT = Path(__file__).resolve().parents[1]


def _load_results_cache():
    spec = importlib.util.spec_from_file_location("results_cache", ROOT / "book" / "_tools" / "results_cache.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_profile_lists_what_is_missing_and_never_trains(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a cpu build must not train")

    monkeypatch.setattr("beafx.experiments.runner.run_experiments", boom)
    r = book_results("synthetic", profile="cpu", root=tmp_path)
    plan = make_plan("cpu", "synthetic", root=tmp_path)
    assert not r.computed and not r.results.runs
    assert {m for m in r.missing if not m.startswith("baselines:")} == {p.name for p in plan.todo()}
    assert set(r.skipped) == {p.name for p in plan.runs if p.status in ("gpu-only", "blocked")}
    text = r.status_markdown()
    assert "beafx experiments --profile cpu --source synthetic" in text and "make book-regenerate" in text


def test_profile_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_PROFILE", "cpu")
    monkeypatch.setenv("BEAFX_MAX_STEPS", "3")  # a cap does not change which results are shown
    assert book_results(root=tmp_path, compute=False).profile == "cpu"
    monkeypatch.setenv("BEAFX_PROFILE", "nonsense")
    with pytest.raises(ValueError, match="unknown profile 'nonsense'"):
        book_results(root=tmp_path)


def test_results_root_from_environment_or_the_book_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_RESULTS", str(tmp_path / "elsewhere"))
    assert book.default_results_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("BEAFX_RESULTS")
    (tmp_path / "results").mkdir()
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")  # chapters run in book/: the repository's results are ../results
    assert book.default_results_root() == Path("..") / "results"


@pytest.mark.slow
def test_smoke_profile_computes_what_is_missing_once(tmp_path, monkeypatch):
    from beafx.experiments import runner

    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(profiles.PROFILES["smoke"], test_max_tracks=2))
    cell = "table2/tfe/peq"
    real_make_plan = book.make_plan
    monkeypatch.setattr(book, "make_plan", lambda *a, **k: real_make_plan(*a, **{**k, "only": [cell]}))
    real_run = runner.run_experiments
    calls = []

    def run_only_cell(*args, **kwargs):
        calls.append(1)
        return real_run(*args, **{**kwargs, "only": [cell]})

    monkeypatch.setattr(runner, "run_experiments", run_only_cell)
    written = tmp_path / "smoke" / "synthetic" / "peq-peq-tfe-mel-smoke-s0.json"
    assert not written.exists()
    first = book_results("synthetic", profile="smoke", root=tmp_path)
    assert first.computed and not first.missing and len(calls) == 1
    assert list(first.results.runs) == ["peq-peq-tfe-mel-smoke-s0"]
    assert (tmp_path / "smoke" / "book_build.log").read_text().strip()
    assert written.is_file()  # the computed run's result is where the chapters read it
    again = book_results("synthetic", profile="smoke", root=tmp_path)
    assert not again.computed and len(calls) == 1 and again.results.runs.keys() == first.results.runs.keys()


def test_results_cache_clears_on_profile_change_and_reading_chapters_on_new_results(tmp_path, monkeypatch):
    rc = _load_results_cache()
    root = tmp_path / "repo"
    (root / "book" / "_build" / ".jupyter_cache").mkdir(parents=True)
    (root / "results" / "cpu" / "synthetic").mkdir(parents=True)
    reads = root / "book" / "12_reads.md"
    reads.write_text("r = book_results('synthetic')\n")
    (root / "book" / "01_plain.md").write_text("print(1)\n")
    monkeypatch.setattr(rc, "ROOT", root)
    monkeypatch.setattr(rc, "BOOK", root / "book")
    monkeypatch.setattr(rc, "CACHE", root / "book" / "_build" / ".jupyter_cache")
    monkeypatch.setattr(rc, "KEY_FILE", root / "book" / "_build" / ".results_key.json")
    assert rc.reading_chapters() == [reads]

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(rc.CACHE))
    for md in (reads, root / "book" / "01_plain.md"):  # both chapters executed and cached, as by a build
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(md.read_text(), execution_count=1)])
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(md)), overwrite=True)
        cache.add_nb_to_project(str(md))
    assert len(cache.list_cache_records()) == 2
    assert rc.refresh("cpu", log=lambda *_: None) == "none"  # first build: nothing to compare with
    assert rc.refresh("cpu", log=lambda *_: None) == "none"  # nothing changed
    (root / "results" / "cpu" / "synthetic" / "run.json").write_text(json.dumps({"mel": 1.0}))
    assert rc.refresh("cpu", log=lambda *_: None) == "results"
    uris = {Path(r.uri).name for r in cache.list_cache_records()}
    assert uris == {"01_plain.md"}  # the chapter that reads results runs again; the other is kept
    assert rc.refresh("smoke", log=lambda *_: None) == "all"
    assert not rc.CACHE.exists()


def test_a_source_outside_the_smoke_plan_is_never_computed_by_default(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("debian-music is not in the smoke plan: a build must not run its whole grid")

    monkeypatch.setattr("beafx.experiments.runner.run_experiments", boom)
    r = book_results("debian-music", profile="smoke", root=tmp_path)
    assert not r.computed and r.missing


def test_results_cache_touches_what_it_clears_so_sphinx_reads_it_again(tmp_path, monkeypatch):
    import os
    import time

    rc = _load_results_cache()
    root = tmp_path / "repo"
    (root / "book" / "_build" / ".jupyter_cache").mkdir(parents=True)
    reads, plain = root / "book" / "12_reads.md", root / "book" / "01_plain.md"
    reads.write_text("r = book_results('synthetic')\n")
    plain.write_text("print(1)\n")
    for name, value in (("ROOT", root), ("BOOK", root / "book"), ("CACHE", root / "book" / "_build" / ".jupyter_cache"),
                        ("KEY_FILE", root / "book" / "_build" / ".results_key.json")):
        monkeypatch.setattr(rc, name, value)
    rc.refresh("cpu", log=lambda *_: None)
    old = time.time() - 1000
    for md in (reads, plain):
        os.utime(md, (old, old))
    (root / "results" / "cpu" / "synthetic").mkdir(parents=True)
    (root / "results" / "cpu" / "synthetic" / "run.json").write_text("{}")
    assert rc.refresh("cpu", log=lambda *_: None) == "results"
    assert reads.stat().st_mtime > old + 500 and plain.stat().st_mtime == pytest.approx(old)
    rc.CACHE.mkdir(parents=True, exist_ok=True)
    assert rc.refresh("smoke", log=lambda *_: None) == "all"
    assert plain.stat().st_mtime > old + 500
