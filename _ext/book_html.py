"""A small Sphinx extension that mends the script tags of the built pages (and the
bibliography's list roles).

Three problems show up as JavaScript errors in a reader's browser console:

1. Jupyter Book 1 registers the inline configuration of sphinx-thebe and
   sphinx-togglebutton twice, and the second ``const THEBE_JS_URL`` is a syntax error.
   Duplicate scripts are dropped.
2. The widget manager (@jupyter-widgets/html-manager, embed-amd.js) derives the
   address of its icon fonts from its AMD module name, which resolves relative to the
   page unless RequireJS knows where the package lives: every page with a widget then
   requests fonts that do not exist. Every module the file defines
   (``@jupyter-widgets/html-manager``, ``base``, ``controls`` and their ipywidgets 7
   twins) derives the address of its own copy of the fonts this way, so RequireJS
   ``paths`` entries, built from the embed-amd.js URL in ``nb_ipywidgets_js``, map
   each name into the manager's ``dist`` folder on the CDN, where the fonts are
   (RequireJS never fetches these addresses: embed-amd.js defines the modules).
3. The widget manager typesets with the MathJax 2 API (``MathJax.Hub.Queue``); the book
   loads MathJax 3, where ``MathJax.Hub`` is undefined. A small shim forwards the call
   to MathJax 3's ``typesetPromise``.
"""

from __future__ import annotations

import json
from typing import Any

from sphinx.application import Sphinx

MANAGER_SUFFIX = "/dist/embed-amd.js"
# the widget modules embed-amd.js defines itself
BUNDLED = ("base", "base7", "controls", "controls7")

# Runs before require.js (RequireJS reads a global `require` object as its
# configuration) and before MathJax 3 replaces window.MathJax (so the shim is installed
# again once it has).
WIDGET_SHIM = """\
var require = {paths: %s};
(function () {
  var hub = {Queue: function (cmd) {
    var el = cmd && cmd[2];
    var mj = window.MathJax;
    if (el && mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { return mj.typesetPromise([el]); });
    }
  }};
  var config = window.MathJax = window.MathJax || {};
  config.Hub = hub;
  var startup = config.startup = config.startup || {};
  var ready = startup.ready;
  startup.ready = function () {
    if (ready) { ready(); } else { window.MathJax.startup.defaultReady(); }
    window.MathJax.Hub = hub;
  };
})();"""


def _key(js: Any) -> tuple:
    # Inline scripts come with filename None or "" depending on who added them: the same
    # script.
    return (
        str(getattr(js, "filename", js) or ""),
        json.dumps(getattr(js, "attributes", {}), sort_keys=True),
    )


def mend_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = [js for js in scripts if not (_key(js) in seen or seen.add(_key(js)))]
    manager = next(
        (
            js
            for js in unique
            if str(getattr(js, "filename", "")).endswith(MANAGER_SUFFIX)
        ),
        None,
    )
    if manager is not None:
        base = str(manager.filename)[: -len(MANAGER_SUFFIX)]
        # RequireJS must see the configuration before it loads: insert it ahead of the
        # first script of the widget set (require.js), at the same priority.
        first = min(
            i
            for i, js in enumerate(unique)
            if getattr(js, "priority", 500) == manager.priority
            and str(getattr(js, "filename", "")) in app.config.nb_ipywidgets_js
        )
        cls = type(manager)
        # Each module's fonts sit beside its own address, so every name the file defines
        # must map into dist/: "html-manager" itself too (mapped to the package root,
        # its fonts went one folder up), and "html-manager/dist/..." by the longer, more
        # specific prefix.
        paths = {
            f"@jupyter-widgets/{name}": f"{base}/dist/{name}"
            for name in ("html-manager", *BUNDLED)
        }
        paths["@jupyter-widgets/html-manager/dist"] = f"{base}/dist"
        unique.insert(
            first,
            cls(None, priority=manager.priority, body=WIDGET_SHIM % json.dumps(paths)),
        )
    scripts[:] = unique


def mend_bibliography(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    """Docutils writes the bibliography as a role="list" whose entries have the
    deprecated DPUB role doc-biblioentry, so the list has no list items (Lighthouse's
    aria-deprecated-role and aria-required-children): the entries become list items."""
    body = context.get("body")
    if isinstance(body, str) and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app: Sphinx) -> dict[str, Any]:
    # after myst-nb adds its widget scripts
    app.connect("html-page-context", mend_scripts, priority=900)
    app.connect("html-page-context", mend_bibliography)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
