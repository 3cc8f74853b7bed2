#!/usr/bin/env bash
# Re-vendor the book's JavaScript from npm (run by hand when bumping versions; the output is
# committed so that `make book` needs no network and the built HTML loads nothing from a CDN).
#   - @jupyter-widgets/html-manager: the standalone widget renderer (embed.js, no RequireJS)
#     plus the Font Awesome web fonts it loads relative to itself (woff2/woff only).
#   - MathJax 3: tex-chtml.js plus the files it loads on demand (CHTML fonts, TeX
#     extensions for autoload/require, the menu).
# _config.yml points myst-nb (nb_ipywidgets_js) and Sphinx (mathjax_path) at these files.
set -euo pipefail
HTML_MANAGER_VERSION=1.0.15   # for ipywidgets 8 (widget protocol 2)
MATHJAX_VERSION=3.2.2         # Sphinx 7's mathjax extension targets MathJax 3
here="$(cd "$(dirname "$0")/../_widgets" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "@jupyter-widgets/html-manager@${HTML_MANAGER_VERSION}" "mathjax@${MATHJAX_VERSION}" >/dev/null
mkdir hm mj
tar xzf jupyter-widgets-html-manager-*.tgz -C hm
tar xzf mathjax-*.tgz -C mj

rm -rf "$here/html-manager" "$here/mathjax"
mkdir -p "$here/html-manager" "$here/mathjax"
cp hm/package/dist/embed.js hm/package/dist/embed.js.LICENSE.txt hm/package/dist/*.woff2 \
   hm/package/dist/*.woff "$here/html-manager/"
cp hm/package/package.json "$here/html-manager/package.json"

es5=mj/package/es5
cp "$es5/tex-chtml.js" mj/package/LICENSE mj/package/package.json "$here/mathjax/"
mkdir -p "$here/mathjax/output/chtml/fonts" "$here/mathjax/input/tex"
cp -r "$es5/output/chtml/fonts/woff-v2" "$here/mathjax/output/chtml/fonts/"
cp -r "$es5/input/tex/extensions" "$here/mathjax/input/tex/"
cp -r "$es5/ui" "$here/mathjax/"
echo "vendored html-manager ${HTML_MANAGER_VERSION} and MathJax ${MATHJAX_VERSION} into $here"
du -sh "$here/html-manager" "$here/mathjax"
