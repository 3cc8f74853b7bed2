"""A small Sphinx extension for the beafx book.

- ``{src}`beafx/functional/clip.py``` links a file of the repository at the git ref the book
  is built from, both taken from ``_config.yml`` (``repository.url`` and
  ``repository.branch``), so the URL is written in one place. A path that does not exist in
  the checkout is a build warning (an error in CI, where the book builds with ``-W``).
- Thebe is off in this book, but Jupyter Book always loads sphinx-thebe, which (with Sphinx 7)
  registers its inline configuration script twice: ``const THEBE_JS_URL`` declared twice is a
  JavaScript error on every page. The thebe scripts are dropped from the pages.
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes

ROOT = Path(__file__).resolve().parents[2]


def src_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    env = inliner.document.settings.env
    theme = env.config.html_theme_options
    url = str(theme.get("repository_url", "")).rstrip("/")
    ref = str(theme.get("repository_branch", "main"))
    path = text.strip().lstrip("/")
    messages = []
    if not (ROOT / path).exists():
        messages.append(inliner.reporter.warning(f"{{src}}: {path!r} does not exist in the repository", line=lineno))
    kind = "tree" if (ROOT / path).is_dir() else "blob"
    node = nodes.reference(rawtext, "", refuri=f"{url}/{kind}/{ref}/{path}", classes=["beafx-src"])
    node += nodes.literal(path, path)
    return [node], messages


def _is_thebe(script) -> bool:
    body = getattr(script, "attributes", {}).get("body", "") or ""
    filename = getattr(script, "filename", None) or str(script)
    return "THEBE_JS_URL" in body or "sphinx-thebe" in str(filename)


def drop_thebe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if scripts:
        context["script_files"] = [s for s in scripts if not _is_thebe(s)]


def setup(app):
    app.add_role("src", src_role)
    app.connect("html-page-context", drop_thebe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
