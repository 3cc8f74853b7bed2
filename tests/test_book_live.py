"""The live widgets, used as a reader uses them: sliders dragged in a real Jupyter frontend.

JupyterLab is served on localhost from a scratch folder (its settings, workspaces and runtime
files there too), and Debian's chromium, driven by Selenium, opens a notebook made of the
chapters' own cells: the hidden Colab cell, the setup cell (imports) and the live-widget cell
of the equalizers chapter (``widgets.widget("peq", ...)``), then the same of the compressors
chapter (``widgets.widget("compressor")``). The test runs it (Run All), drags one slider of
each widget with the mouse (a gain of the EQ, the compressor's threshold), and checks that

- the widget's curve image and its output player change (their ``src`` differ before and after:
  the kernel re-ran the effect and sent a new PNG and a new MP3),
- the slider's readout moved,
- no output area shows an error or stderr, the kernel sent no error or stderr message at all
  (a slider callback that raises is an iopub ``error`` outside any output area), no widget
  failed to render, and the browser console has no error.

The cells run from a copy (the committed notebooks are never written). In CI (``CI=true``)
the test must run: missing chromium, chromedriver or JupyterLab fail it instead of skipping.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from book_tool import chapters

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps", "--mute-audio",
    "--window-size=1400,1100",
)
#: (chapter, registry name of its live widget, words of the slider label to drag, first match).
LIVE = (
    ("03_equalizers", "peq", ("gain",)),
    ("04_compressors", "compressor", ("threshold",)),
)
#: Seconds to wait for the notebook to run, and for a slider move to come back.
RUN_TIMEOUT, MOVE_TIMEOUT = 420, 180


def _unavailable(why: str):
    if IN_CI:
        pytest.fail(f"{why} (CI=true: the live-widget test must run; `.ci/run` installs chromium)")
    pytest.skip(why)


# --------------------------------------------------------------------------- the notebook
def _chapter_cells(stem: str, effect: str) -> tuple:
    """``(setup, live)``: the chapter's first code cell that imports beafx, and the first that
    builds the live widget of ``effect``, as the chapter's ``.ipynb`` has them."""
    nb = nbformat.read(BOOK / f"{stem}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = next((c for c in code[1:] if re.search(r"^\s*(from beafx|import beafx)", c.source, re.M)), None)
    live = next((c for c in code if re.search(rf"widgets\.widget\(\s*[\"']{effect}[\"']", c.source)), None)
    assert setup is not None, f"{stem}: no code cell imports beafx"
    assert live is not None, f"{stem}: no cell builds the live widget widgets.widget({effect!r})"
    return setup, live


def live_notebook():
    """The notebook the test opens, and the index of each live-widget cell in it."""
    cells = [nbformat.v4.new_markdown_cell("# Live sliders (cells of the chapters)"),
             nbformat.v4.new_code_cell(chapters.colab_cell_source())]
    where = {}
    for stem, effect, _ in LIVE:
        setup, live = _chapter_cells(stem, effect)
        cells += [nbformat.v4.new_markdown_cell(f"## {stem}"), nbformat.v4.new_code_cell(setup.source)]
        where[effect] = len(cells)
        cells.append(nbformat.v4.new_code_cell(live.source))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb, where


def test_the_chapters_have_live_widget_cells():
    nb, where = live_notebook()
    assert set(where) == {effect for _, effect, _ in LIVE}
    assert all(nb.cells[i].cell_type == "code" for i in where.values())


# --------------------------------------------------------------------------- JupyterLab and chromium
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """``(url, token, folder)`` of a JupyterLab served on localhost from a scratch folder."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _unavailable("JupyterLab is not installed (pip install -e '.[dev]')")
    home = Path(tempfile.mkdtemp(prefix="beafx-lab-"))
    work = home / "work"
    work.mkdir()
    settings = home / "settings"
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    env.update({
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    })
    env.pop("BEAFX_INSTALL_URL", None)
    port, token = _free_port(), secrets.token_hex(16)
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() - t0 > 120:
            proc.kill()
            pytest.fail(f"JupyterLab did not start:\n{(home / 'lab.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield url, token, work
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        _unavailable(f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="beafx-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(RUN_TIMEOUT + 60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------- in the page
_OPEN = """
const done = arguments[arguments.length - 1];
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const t0 = Date.now();
  while (Date.now() - t0 < 120000) {
    const app = window.jupyterapp;
    const panel = app && app.shell && app.shell.currentWidget;
    const ctx = panel && panel.sessionContext;
    if (ctx && ctx.session && ctx.session.kernel && ctx.session.kernel.status === 'idle' && panel.content
        && panel.content.widgets.length > 0) {
      // every kernel message that is an error or stderr, wherever it would be shown
      window.__beafxKernelErrors = [];
      ctx.iopubMessage.connect((_, msg) => {
        const t = msg.header.msg_type;
        if (t === 'error') window.__beafxKernelErrors.push(msg.content.ename + ': ' + msg.content.evalue);
        if (t === 'stream' && msg.content.name === 'stderr') window.__beafxKernelErrors.push('stderr: ' + msg.content.text);
      });
      done({ok: true, cells: panel.content.widgets.length});
      return;
    }
    await sleep(250);
  }
  done({ok: false});
})();
"""

_RUN_ALL = """
const done = arguments[arguments.length - 1];
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const panel = window.jupyterapp.shell.currentWidget;
  try {
    await window.jupyterapp.commands.execute('notebook:run-all-cells');
  } catch (e) { done({error: String(e)}); return; }
  const t0 = Date.now();
  const code = () => panel.content.widgets.filter((w) => w.model.type === 'code');
  while (Date.now() - t0 < arguments[0] * 1000) {
    const kernel = panel.sessionContext.session.kernel;
    if (kernel.status === 'idle' && code().every((w) => w.model.executionCount !== null)) break;
    await sleep(250);
  }
  done({counts: code().map((w) => w.model.executionCount), status: panel.sessionContext.session.kernel.status});
})();
"""

#: What one widget output shows now: slider labels and readouts, image and audio sources.
_STATE = """
const cell = window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]];
const root = cell.node.querySelector('.jp-OutputArea');
if (!root) return null;
return {
  sliders: Array.from(root.querySelectorAll('.widget-slider')).map((s) => ({
    label: (s.querySelector('.widget-label') || {}).textContent || '',
    readout: (s.querySelector('.widget-readout') || {}).textContent || ''})),
  images: Array.from(root.querySelectorAll('img')).map((i) => i.src),
  audios: Array.from(root.querySelectorAll('audio')).map((a) => a.src),
};
"""

_PROBLEMS = """
const panel = window.jupyterapp.shell.currentWidget;
const out = [];
panel.content.widgets.forEach((cell, i) => {
  if (cell.model.type !== 'code') return;
  for (const o of cell.model.outputs.toJSON()) {
    if (o.output_type === 'error') out.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    if (o.output_type === 'stream' && o.name === 'stderr') out.push(`cell ${i} stderr: ${o.text}`);
  }
});
document.querySelectorAll('.jupyter-widgets-error-widget').forEach(() => out.push('a widget failed to render'));
document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
  .forEach((n) => out.push('output area error: ' + n.textContent.slice(0, 300)));
return out.concat(window.__beafxKernelErrors || []);
"""


def _wait(driver, what, timeout: float, message: str):
    t0 = time.time()
    while True:
        value = what()
        if value:
            return value
        if time.time() - t0 > timeout:
            pytest.fail(message)
        time.sleep(0.5)


def _rendered(state) -> bool:
    return bool(state and state["sliders"] and state["images"] and all(state["images"])
                and state["audios"] and all(state["audios"]))


def _drag_slider(driver, cell: int, words: tuple[str, ...]) -> str:
    """Drag the first slider whose label has one of ``words`` (else the first) by a quarter of
    its track, towards the side with more room; returns its label."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    root = driver.execute_script(
        "return window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]].node", cell)
    sliders = root.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-slider")
    labels = [s.find_element(By.CSS_SELECTOR, ".widget-label").get_attribute("textContent") for s in sliders]
    pick = next((i for i, label in enumerate(labels) if any(w in label.lower() for w in words)), 0)
    slider = sliders[pick]
    track = slider.find_element(By.CSS_SELECTOR, ".noUi-target")
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", slider)
    time.sleep(0.3)
    t, h = track.rect, handle.rect
    centre = h["x"] + h["width"] / 2
    dx = int(t["width"] / 4) * (1 if centre < t["x"] + t["width"] / 2 else -1)
    ActionChains(driver).move_to_element(handle).click_and_hold().pause(0.2) \
        .move_by_offset(dx // 2, 0).pause(0.1).move_by_offset(dx - dx // 2, 0).pause(0.2).release().perform()
    return labels[pick]


@pytest.mark.slow
def test_sliders_move_the_curve_and_the_sound_in_jupyterlab(lab, browser):
    url, token, work = lab
    nb, where = live_notebook()
    nbformat.write(nb, work / "live_sliders.ipynb")
    browser.get_log("browser")
    browser.get(f"{url}/lab/tree/live_sliders.ipynb?token={token}&reset")
    opened = browser.execute_async_script(_OPEN)
    assert opened["ok"], "JupyterLab did not open the notebook with an idle kernel"
    ran = browser.execute_async_script(_RUN_ALL, RUN_TIMEOUT)
    assert "error" not in ran, ran
    assert ran["status"] == "idle" and all(c is not None for c in ran["counts"]), f"Run All did not finish: {ran}"
    problems = browser.execute_script(_PROBLEMS)
    assert not problems, "after Run All:\n" + "\n".join(problems)

    moved = {}
    for _, effect, words in LIVE:
        cell = where[effect]
        before = _wait(browser, lambda: (s := browser.execute_script(_STATE, cell)) and _rendered(s) and s,
                       60, f"the {effect} widget did not render (sliders, image, players)")
        label = _drag_slider(browser, cell, words)

        def changed():
            now = browser.execute_script(_STATE, cell)
            if not _rendered(now):
                return None
            if now["images"] != before["images"] and now["audios"] != before["audios"]:
                return now
            return None

        after = _wait(browser, changed, MOVE_TIMEOUT,
                      f"{effect}: dragging {label!r} changed neither the curve image nor the player in {MOVE_TIMEOUT} s "
                      f"(before: {before['sliders']})")
        readouts = lambda s: [x["readout"] for x in s["sliders"]]  # noqa: E731
        assert readouts(after) != readouts(before), f"{effect}: the slider {label!r} did not move"
        moved[effect] = label
        # the dry player (input) stays; the output player and the image are new
        assert after["audios"][0] == before["audios"][0] and after["audios"][-1] != before["audios"][-1], \
            f"{effect}: players before {before['audios']}, after {after['audios']}"
        assert after["images"][0] != before["images"][0]

    time.sleep(1.0)
    problems = browser.execute_script(_PROBLEMS)
    assert not problems, f"after moving {moved}:\n" + "\n".join(problems)
    console = [f"{e['source']}: {e['message'][:300]}" for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not console, "browser console errors:\n" + "\n".join(console)
