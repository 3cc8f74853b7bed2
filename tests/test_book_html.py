"""The rendered book in a real headless browser (Debian's chromium, driven by Selenium).

Every page is served from a localhost HTTP server and loaded once; the tests then check
what a reader would hit: console errors, anything fetched from the network (the book must
work offline), images that do not load, audio without a duration, broken internal links,
widgets that do not render, pages over 8 MB.

In CI (``CI=true``) these tests must run: a missing book (``make book`` first) or a missing
browser fails them. Elsewhere they skip when ``book/_build/html`` or chromium is absent.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from book_tool import chapters

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "book" / "_build" / "html"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
MAX_PAGE_BYTES = 8 * 1024 * 1024
#: Flags that keep chromium from calling home on a closed network (each attempt is a console error).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps", "--mute-audio",
    "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1600",
)
#: What Lightning prints when it trains; none of it may reach a page.
LIGHTNING_NOISE = ("GPU available:", "TPU available:", "LOCAL_RANK:", "lightning_logs", "| Name ", "it/s]")

pytestmark = pytest.mark.book


TOC_PAGES = [str(p.relative_to(chapters.BOOK).with_suffix("")) for p in chapters.chapters()]
PAGES = TOC_PAGES + ["genindex", "search"]


def _unavailable(why: str):
    if IN_CI:
        pytest.fail(f"{why} (CI=true: the browser tests must run; `.ci/run` builds the book first)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def built() -> Path:
    if not (HTML / "index.html").is_file():
        _unavailable("book/_build/html is missing: run `make book` first")
    return HTML


def test_book_is_built_with_every_page_of_the_toc(built):
    missing = [p for p in TOC_PAGES if not (built / f"{p}.html").is_file()]
    assert not missing, f"pages of _toc.yml missing from the build: {missing}"
    assert not list((ROOT / "book").rglob("lightning_logs")), "Lightning logs belong under results/, not book/"


@pytest.fixture(scope="module")
def server(built):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(built)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


_WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  let t0 = Date.now();
  while (document.querySelectorAll('.widget-subarea > .jupyter-widgets').length < views && Date.now() - t0 < 30000) {
    await sleep(100);
  }
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    try { await window.MathJax.startup.promise; } catch (e) {}
  }
  window.scrollTo(0, document.body.scrollHeight);
  await sleep(200);
  window.scrollTo(0, 0);
  const audios = Array.from(document.querySelectorAll('audio'));
  await Promise.all(audios.map((a) => new Promise((resolve) => {
    if (a.readyState >= 1 || a.error) { resolve(); return; }
    a.addEventListener('loadedmetadata', resolve, { once: true });
    a.addEventListener('error', resolve, { once: true });
    setTimeout(resolve, 20000);
    if (a.preload === 'none') { a.preload = 'metadata'; a.load(); }
  })));
  t0 = Date.now();
  while (Array.from(document.images).some((i) => !i.complete) && Date.now() - t0 < 20000) {
    await sleep(100);
  }
  done({
    views: views,
    rendered: document.querySelectorAll('.widget-subarea > .jupyter-widgets').length,
    sliders: document.querySelectorAll('.widget-subarea .widget-slider').length,
    widget_errors: document.querySelectorAll('.jupyter-widgets-error-widget, .jupyter-widgets .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]').length,
    images: Array.from(document.images).map((i) => ({ src: i.currentSrc.slice(0, 120), ok: i.complete && i.naturalWidth > 0 })),
    audios: Array.from(document.querySelectorAll('audio')).map((a) => ({
      src: (a.currentSrc || a.src || '').slice(0, 60), duration: a.duration, error: a.error ? a.error.code : null })),
    links: Array.from(document.querySelectorAll('a[href]')).map((a) => a.getAttribute('href')),
    text: document.body.innerText,
  });
})();
"""


@pytest.fixture(scope="module")
def visit(server, browser):
    """``visit(page)`` loads a page once and returns what the browser saw (cached)."""
    cache: dict[str, dict] = {}

    def _visit(page: str) -> dict:
        if page not in cache:
            if not (HTML / f"{page}.html").is_file():
                pytest.fail(f"{page}.html is not in the build")
            browser.get_log("browser")
            browser.get_log("performance")
            browser.get(urljoin(server, f"{page}.html"))
            seen = browser.execute_async_script(_WAIT_FOR_PAGE)
            time.sleep(0.3)
            seen["console"] = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            requests = []
            for entry in browser.get_log("performance"):
                msg = json.loads(entry["message"])["message"]
                if msg.get("method") == "Network.requestWillBeSent":
                    requests.append(msg["params"]["request"]["url"])
            seen["requests"] = requests
            cache[page] = seen
        return cache[page]

    return _visit


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_console_errors(visit, page):
    errors = [f"{e['source']}: {e['message'][:300]}" for e in visit(page)["console"]]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("page", PAGES)
def test_page_fetches_nothing_from_the_network(visit, page):
    remote = [u for u in visit(page)["requests"]
              if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname != "127.0.0.1"]
    assert not remote, f"{page} fetched from outside the book: {remote[:10]}"


@pytest.mark.parametrize("page", PAGES)
def test_every_image_loads(visit, page):
    broken = [i["src"] for i in visit(page)["images"] if not i["ok"]]
    assert not broken, f"{page}: images that did not load: {broken}"


@pytest.mark.parametrize("page", TOC_PAGES)
def test_every_audio_element_has_a_duration(visit, page):
    audios = visit(page)["audios"]
    bad = [a for a in audios if a["error"] is not None or not (isinstance(a["duration"], (int, float)) and a["duration"] > 0)]
    assert not bad, f"{page}: audio without a duration: {bad[:5]}"


def test_the_chapters_have_players_and_widgets_that_render(visit):
    assert all(visit(p)["audios"] for p in TOC_PAGES), "every chapter plays audio"
    with_widgets = [p for p in TOC_PAGES if visit(p)["views"]]
    assert with_widgets, "no page shows a widget"
    for page in with_widgets:  # rendered from the state saved in the page, by the vendored html-manager
        seen = visit(page)
        assert seen["rendered"] == seen["views"], f"{page}: {seen['rendered']} of {seen['views']} widgets rendered"
        assert seen["sliders"] > 0 and seen["widget_errors"] == 0, page


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(visit, page):
    broken = []
    base = f"http://book/{page}.html"
    for href in visit(page)["links"]:
        if href.startswith(("mailto:", "javascript:")):
            continue
        url = urlsplit(urljoin(base, href))
        if url.scheme in ("http", "https") and url.hostname != "book":
            continue  # external: not reachable here, and not part of the book
        target = HTML / unquote(url.path.lstrip("/"))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(href)
            continue
        if url.fragment and target.suffix == ".html":
            text = target.read_text(errors="ignore")
            if f'id="{url.fragment}"' not in text and f"name=\"{url.fragment}\"" not in text:
                broken.append(href)
    assert not broken, f"{page}: broken internal links: {sorted(set(broken))[:20]}"


@pytest.mark.parametrize("page", PAGES)
def test_page_weighs_at_most_8_mb(built, page):
    html = built / f"{page}.html"
    if not html.is_file():
        pytest.fail(f"{page}.html is not in the build")
    text = html.read_text(errors="ignore")
    images = {m for m in re.findall(r'src="(_images/[^"]+)"', text)}
    total = html.stat().st_size + sum((built / m).stat().st_size for m in images if (built / m).is_file())
    assert total <= MAX_PAGE_BYTES, f"{page}: {total / 1e6:.1f} MB (HTML + its images)"


@pytest.mark.parametrize("page", TOC_PAGES)
def test_colab_button_opens_the_paired_notebook(built, page):
    text = (built / f"{page}.html").read_text(errors="ignore") if (built / f"{page}.html").is_file() else ""
    links = re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', text)
    assert links, f"{page}: no Colab button"
    assert all(link.endswith(f"/book/{page}.ipynb") for link in links), links
    assert (ROOT / "book" / f"{page}.ipynb").is_file()


@pytest.mark.parametrize("page", TOC_PAGES)
def test_no_training_noise_on_the_page(visit, page):
    text = visit(page)["text"]
    found = [marker for marker in LIGHTNING_NOISE if marker in text]
    assert not found, f"{page} shows Lightning output: {found}"
