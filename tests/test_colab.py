"""The Colab path of the book: the hidden install cell, and a chapter run as on Colab.

Colab has torch preinstalled, imports ``google.colab`` before the first cell, and starts in an
empty folder with no clone of the repository. ``test_a_chapter_runs_as_on_colab`` plays that:

- a fresh virtual environment whose base is the project's ``.venv`` minus beafx (a ``.pth``
  adds a folder of links to the ``.venv``'s site-packages, every entry but beafx's), so torch,
  torchaudio and the rest are there without a download, as on Colab. ``venv
  --system-site-packages`` cannot do this: a venv made from a venv sees the base Python's
  site-packages, not the first venv's;
- a fake ``google.colab`` package on ``PYTHONPATH``, imported by an IPython startup file;
- the chapter's ``.ipynb`` (what the Colab button opens), run by a kernel of that environment
  in an empty folder, with ``BEAFX_INSTALL_URL`` pointing the install cell at this clone
  (``git+file://...@HEAD``: the committed tree, as Colab would get it from the repository).

The only download is the build backend (setuptools) that pip fetches from PyPI to build beafx.
The other tests run the install cell's failure paths in a kernel and its logic in-process.
"""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest
from book_tool import chapters

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
#: The chapter the Colab test runs in full (the first with code after the landing page).
CHAPTER = "01_parameters"


# --------------------------------------------------------------------------- helpers
def _fake_colab(where: Path) -> dict[str, str]:
    """A fake ``google.colab`` imported at kernel start; returns the environment to use."""
    pkg = where / "fake" / "google" / "colab"  # google/ has no __init__: a namespace package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab (beafx tests)."""\nFAKE = True\n')
    startup = where / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # Colab imports it before any cell\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON", "PYTHON"))}
    env.update({
        "PYTHONPATH": str(where / "fake"),
        "IPYTHONDIR": str(where / "ipython"),
        "JUPYTER_CONFIG_DIR": str(where / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(where / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(where / "jupyter" / "runtime"),
        "PYTHONNOUSERSITE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    })
    env.pop("BEAFX_INSTALL_URL", None)
    return env


#: Runs a notebook with nbclient in the interpreter that runs this script (so the kernel is that
#: environment's python) and writes the executed notebook, errors included, as JSON.
_RUNNER = textwrap.dedent('''
    import sys, nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    client = NotebookClient(nb, timeout=int(sys.argv[4]), kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": sys.argv[3]}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, sys.argv[2])
''')


def _run_notebook(python: str, nb, tmp: Path, env: dict[str, str], cwd: Path, *, cell_timeout: int = 300):
    """Execute ``nb`` with a kernel of ``python`` in ``cwd``; returns the executed notebook."""
    src, out, runner = tmp / "in.ipynb", tmp / "out.ipynb", tmp / "run_notebook.py"
    nbformat.write(nb, src)
    runner.write_text(_RUNNER)
    proc = subprocess.run([python, str(runner), str(src), str(out), str(cwd), str(cell_timeout)],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=840)
    assert out.is_file(), f"the notebook did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return nbformat.read(out, as_version=4)


def _errors(nb) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if o.output_type == "error":
                found.append(f"cell {i}: {o.ename}: {o.evalue}\n" + "\n".join(o.traceback)[-2000:])
            elif o.output_type == "stream" and o.name == "stderr":
                found.append(f"cell {i} wrote to stderr: {o.text[-1000:]}")
    return found


def _colab_cell(**kw):
    return nbformat.v4.new_code_cell(chapters.colab_cell_source(**kw))


# --------------------------------------------------------------------------- the cell's logic, in-process
class _Pip:
    """Records the pip command the cell runs, and answers with ``returncode``."""

    def __init__(self, returncode: int = 0, stderr: str = ""):
        self.calls: list[list[str]] = []
        self.returncode, self.stderr = returncode, stderr

    def __call__(self, cmd, **kwargs):
        self.calls.append(list(cmd))
        assert kwargs["env"]["GIT_TERMINAL_PROMPT"] == "0"  # a private repository never waits for a password
        return subprocess.CompletedProcess(cmd, self.returncode, "", self.stderr)


def _exec_cell(source: str, monkeypatch, pip: _Pip, *, colab: bool = True, installed: bool = False) -> dict:
    import importlib.util
    import types

    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if installed else None) if name == "beafx" else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", pip)
    scope: dict = {}
    exec(compile(source, "<colab cell>", "exec"), scope)
    return scope


def test_published_cell_installs_the_configured_repository(monkeypatch):
    url, ref = chapters.repository()
    source = chapters.colab_cell_source(is_published=True)
    monkeypatch.delenv(chapters.INSTALL_ENV, raising=False)
    pip = _Pip()
    _exec_cell(source, monkeypatch, pip)
    assert pip.calls == [[sys.executable, "-m", "pip", "install", "--quiet", f"beafx @ git+{url}@{ref}"]]
    monkeypatch.setenv(chapters.INSTALL_ENV, "/some/clone")
    pip = _Pip()
    _exec_cell(source, monkeypatch, pip)
    assert pip.calls[0][-1] == "/some/clone"  # the override wins


@pytest.mark.parametrize("is_published", [True, False])
def test_cell_does_nothing_outside_colab_or_when_beafx_is_there(monkeypatch, is_published):
    source = chapters.colab_cell_source(is_published=is_published)
    for colab, installed in ((False, False), (True, True)):
        pip = _Pip()
        _exec_cell(source, monkeypatch, pip, colab=colab, installed=installed)
        assert pip.calls == []


def test_unpublished_cell_installs_only_the_override(monkeypatch):
    source = chapters.colab_cell_source(is_published=False)
    monkeypatch.delenv(chapters.INSTALL_ENV, raising=False)
    pip = _Pip()
    with pytest.raises(Exception) as err:
        _exec_cell(source, monkeypatch, pip)
    assert pip.calls == [], "nothing to install from while the repository is unpublished"
    (sentence,) = err.value._render_traceback_()
    assert "until its repository is published" in sentence and f"os.environ['{chapters.INSTALL_ENV}']" in sentence
    monkeypatch.setenv(chapters.INSTALL_ENV, "git+file:///clone@abc")
    pip = _Pip()
    _exec_cell(source, monkeypatch, pip)
    assert pip.calls[0][-1] == "git+file:///clone@abc"


def test_a_failed_install_says_what_to_set(monkeypatch, capsys):
    monkeypatch.setenv(chapters.INSTALL_ENV, "/no/such/clone")
    pip = _Pip(returncode=1, stderr="ERROR: Invalid requirement: '/no/such/clone'")
    with pytest.raises(Exception) as err:
        _exec_cell(chapters.colab_cell_source(is_published=True), monkeypatch, pip)
    (sentence,) = err.value._render_traceback_()
    assert sentence.startswith("pip could not install beafx from /no/such/clone")
    assert f"set os.environ['{chapters.INSTALL_ENV}']" in sentence and sentence.count(". ") == 0
    assert "Invalid requirement" in capsys.readouterr().out  # pip's own reason, printed above it


# --------------------------------------------------------------------------- config, buttons, banner
def test_published_flag_is_a_boolean_and_the_chapters_follow_it():
    assert isinstance(chapters.published(), bool)
    first = nbformat.read(ROOT / "book" / f"{CHAPTER}.ipynb", as_version=4).cells[0]
    assert first.source == chapters.colab_cell_source(), "run `python book/_tools/chapters.py`"
    assert "chapters" in chapters.config()["sphinx"]["local_extensions"]  # buttons and banner


def test_colab_buttons_say_once_published_while_unpublished():
    colab = {"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
             "url": "https://colab.research.google.com/github/o/r/blob/main/book/x.ipynb"}
    binder = {"type": "link", "text": "Binder", "tooltip": "Launch on Binder", "url": "https://mybinder.org/v2/x"}
    context = {"header_buttons": [{"type": "group", "buttons": [dict(colab), dict(binder)]}, {"type": "link"}]}
    assert chapters.relabel_colab_buttons(context) == 1
    relabelled, untouched = context["header_buttons"][0]["buttons"]
    assert relabelled["text"] == "Colab (once published)" and "once published" in relabelled["tooltip"]
    assert relabelled["url"] == colab["url"] and untouched == binder
    assert "once published" in chapters.BANNER and not chapters.BANNER.startswith("http")


def test_the_built_pages_say_once_published():
    html = ROOT / "book" / "_build" / "html" / f"{CHAPTER}.html"
    if not html.is_file():
        if IN_CI:
            pytest.fail("book/_build/html is missing (CI=true: `.ci/run` builds the book first)")
        pytest.skip("book/_build/html is missing: run `make book` first")
    text = html.read_text(errors="ignore")
    if chapters.published():
        assert "once published" not in text
    else:
        assert "Colab (once published)" in text and "bd-header-announcement" in text, \
            f"{html.name}: no 'once published' Colab button or banner (a build older than book/_tools/chapters.py?)"


# --------------------------------------------------------------------------- the cell in a real kernel
def test_install_cell_stops_with_one_sentence_in_a_kernel(tmp_path):
    """In IPython the failures show as the sentence alone (no traceback), and stop "Run all"."""
    env = _fake_colab(tmp_path)
    work = tmp_path / "content"
    work.mkdir()
    check = nbformat.v4.new_code_cell("import google.colab, sys\nprint('colab' if 'google.colab' in sys.modules else '')")
    nb = nbformat.v4.new_notebook(cells=[
        check,
        nbformat.v4.new_code_cell(f"import os\nos.environ.pop('{chapters.INSTALL_ENV}', None)"),
        _colab_cell(is_published=False),
        nbformat.v4.new_code_cell(f"os.environ['{chapters.INSTALL_ENV}'] = {str(tmp_path / 'no-such-clone')!r}"),
        _colab_cell(is_published=False),
    ])
    # installed=False in that kernel: its beafx would be found, so hide it from find_spec
    nb.cells[1].source += "\nimport importlib.util\n_fs = importlib.util.find_spec\nimportlib.util.find_spec = " \
                          "lambda n, *a: None if n == 'beafx' else _fs(n, *a)"
    out = _run_notebook(sys.executable, nb, tmp_path, env, work, cell_timeout=120)
    assert out.cells[0].outputs[0].text.strip() == "colab", "google.colab is not preloaded"
    for i, needle in ((2, "until its repository is published"), (4, "pip could not install beafx from")):
        errors = [o for o in out.cells[i].outputs if o.output_type == "error"]
        assert len(errors) == 1, out.cells[i].outputs
        assert errors[0].ename == "BeafxNotInstalled"
        (line,) = errors[0].traceback  # the sentence, no traceback
        assert needle in line and "Traceback" not in line and f"os.environ['{chapters.INSTALL_ENV}']" in line
    assert [o.output_type for o in out.cells[2].outputs] == ["error"], "the placeholder case prints one sentence"


# --------------------------------------------------------------------------- a chapter, as on Colab
def _colab_like_venv(tmp: Path) -> Path:
    """A venv that sees the project's packages (torch, ...) except beafx; returns its python."""
    site = Path(sysconfig.get_paths()["purelib"])
    base = tmp / "preinstalled"
    base.mkdir()
    for entry in site.iterdir():
        if "beafx" not in entry.name.lower():  # beafx-*.dist-info, its editable finder and .pth
            (base / entry.name).symlink_to(entry)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir also runs the .pth files there (setuptools' distutils shim, ...), as a site dir
    (Path(purelib) / "zz_preinstalled.pth").write_text(f"import site; site.addsitedir({str(base)!r})\n")
    return python


def _this_clone() -> str:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        if IN_CI:
            pytest.fail(f"{ROOT} is not a git clone: {head.stderr.strip()}")
        pytest.skip("not a git clone")
    return f"git+file://{ROOT}@{head.stdout.strip()}"


@pytest.mark.slow
def test_a_chapter_runs_as_on_colab(tmp_path):
    if shutil.which("git") is None:
        pytest.fail("git is needed (pip installs beafx from git+file://)")
    source = _this_clone()
    python = _colab_like_venv(tmp_path)
    env = _fake_colab(tmp_path)
    env[chapters.INSTALL_ENV] = source
    content = tmp_path / "content"  # Colab's empty working folder: no repository around
    content.mkdir()

    nb = nbformat.read(ROOT / "book" / f"{CHAPTER}.ipynb", as_version=4)
    assert nb.cells[0].source == chapters.colab_cell_source(), "run `python book/_tools/chapters.py`"
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import importlib.util, sys\nprint(sys.prefix, 'google.colab' in sys.modules, importlib.util.find_spec('beafx'))"))
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, sys, beafx\nprint(json.dumps({'prefix': sys.prefix, 'beafx': beafx.__file__}))"))
    out = _run_notebook(str(python), nb, tmp_path, env, content)

    before = out.cells[0].outputs[0].text.split()
    assert before[0] == str(tmp_path / "venv") and before[1:] == ["True", "None"], \
        f"the kernel is not the Colab-like one, or beafx was already there: {before}"
    errors = _errors(out)
    assert not errors, "\n\n".join(errors)
    where = json.loads(out.cells[-1].outputs[0].text)
    assert Path(where["beafx"]).is_relative_to(tmp_path / "venv"), where  # pip installed it from the clone
    assert sum(1 for c in out.cells if c.cell_type == "code" and c.outputs) >= 4


def test_sync_refuses_a_half_edited_colab_cell():
    md = (ROOT / "book" / f"{CHAPTER}.md").read_text()
    front = md[: md.index("\n---\n", 4) + 5]
    good = front + "\n" + chapters.colab_cell_markdown() + "\n# Title\n\n```{code-cell} ipython3\nimport beafx\n```\n"
    assert chapters.with_colab_cell(good) == good
    cut = good.replace("            return [str(self)]\n", "", 1).replace("\n```\n\n# Title", "\n\n# Title", 1)
    with pytest.raises(ValueError, match="not closed"):
        chapters.with_colab_cell(cut)  # replacing it would delete the title and the next cell


def _prose_paragraphs(md: Path) -> list[str]:
    """The chapter's markdown paragraphs, code cells and front matter left out."""
    text = re.sub(r"```\{code-cell\}.*?\n```", "", md.read_text(), flags=re.S)
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


@pytest.mark.parametrize("md", chapters.chapters(), ids=lambda p: p.stem)
def test_chapter_text_says_colab_works_once_published(md):
    """While the repository is unpublished, prose that sends the reader to Colab says "once published"."""
    if chapters.published():
        pytest.skip("repository.published is true")
    bad = [p.strip()[:200] for p in _prose_paragraphs(md)
           if re.search(r"\bColab\b", p) and chapters.ONCE_PUBLISHED not in " ".join(p.split())]
    assert not bad, f"{md.name}: say Colab works {chapters.ONCE_PUBLISHED!r} in:\n" + "\n---\n".join(bad)
