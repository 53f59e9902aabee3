"""The built book in a real browser: Debian's Chromium, driven by Playwright, on
localhost.

Run after `make book` (`make test` does). Every request to an outside host is either
answered from a local copy of the CDN package it names (tests/browser/node_modules,
installed by `npm ci` from package.json) or counted as a failure: the test machine has
no internet, and a published page must not depend on anything else.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
NODE = Path(__file__).resolve().parent / "node_modules"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CDN = "cdn.jsdelivr.net"
PAGES = sorted(
    str(p.relative_to(HTML))
    for p in HTML.rglob("*.html")
    if not {"_static", "_sources", "_images"} & set(p.relative_to(HTML).parts)
)
SLIDER_MODELS = {"SelectionSliderModel", "IntSliderModel", "FloatSliderModel"}


def _widget_state(page: str) -> dict:
    text = (HTML / page).read_text()
    m = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>',
        text,
        re.DOTALL,
    )
    return json.loads(m.group(1))["state"] if m else {}


SLIDER_PAGES = [
    p
    for p in PAGES
    if any(m["model_name"] in SLIDER_MODELS for m in _widget_state(p).values())
]


@pytest.fixture(scope="session")
def server():
    if not (HTML / "index.html").is_file():
        pytest.fail("no built book in _build/html: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no browser at {CHROMIUM}: `make test` installs Debian's chromium (or set "
            "CHROMIUM)"
        )
    if not NODE.is_dir():
        pytest.fail(
            "tests/browser/node_modules is missing: `make test` runs `npm ci` there"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def local_copy(url: str) -> Path | None:
    """The file in node_modules that a cdn.jsdelivr.net/npm/<package>@<version>/<path>
    URL names."""
    u = urlparse(url)
    if u.hostname != CDN or not u.path.startswith("/npm/"):
        return None
    m = re.match(r"/npm/((?:@[^/]+/)?[^/@]+)@([^/]+)/(.+)", u.path)
    if not m:
        return None
    name, version, rest = m.groups()
    meta = NODE / name / "package.json"
    if not meta.is_file():
        return None
    installed = json.loads(meta.read_text())["version"]
    if not (installed == version or installed.startswith(version + ".")):
        pytest.fail(
            f"{url} asks for {name}@{version}, but tests/browser/package.json installs "
            f"{installed}"
        )
    path = NODE / name / rest
    return path if path.is_file() else None


class PageLog:
    """Everything that went wrong while a page loaded and ran."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.unanswered: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.errors.append(f"console: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on(
            "requestfailed",
            lambda r: self.errors.append(f"failed: {r.url} ({r.failure})"),
        )
        page.on(
            "response",
            lambda r: (
                self.errors.append(f"HTTP {r.status}: {r.url}")
                if r.status >= 400
                else None
            ),
        )
        page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        host = urlparse(url).hostname
        if host in ("127.0.0.1", "localhost") or url.startswith("data:"):
            return route.continue_()
        path = local_copy(url)
        if path is None:
            self.unanswered.append(url)
            return route.abort()
        # The page asks for these with crossorigin="anonymous": answer as the CDN does.
        return route.fulfill(
            path=str(path), headers={"Access-Control-Allow-Origin": "*"}
        )


def open_page(browser, server, page_path: str, width: int = 1280):
    """A page at a laptop's width (or ``width``), loaded with its widgets: the page and
    its PageLog."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    log = PageLog(page)
    page.goto(f"{server}/{page_path}", wait_until="load")
    if _widget_state(page_path):
        page.wait_for_selector(".jupyter-widgets", timeout=30_000)
    page.wait_for_load_state("networkidle")
    return page, log


def test_the_book_has_pages():
    assert (
        "intro.html" in PAGES
        and "chapters/01_overview.html" in PAGES
        and len(PAGES) >= 9
    )


@pytest.mark.parametrize("page_path", PAGES)
def test_page_loads_cleanly(browser, server, page_path):
    page, log = open_page(browser, server, page_path)
    broken = page.evaluate("""Array.from(document.images)
        .filter(img => !img.complete || img.naturalWidth === 0)
        .map(img => img.currentSrc || img.src)""")
    page.close()
    assert log.unanswered == [], "requests to outside hosts that no local copy answers"
    assert log.errors == [], "JavaScript errors, failed or refused requests"
    assert broken == [], "images that did not load"


@pytest.mark.parametrize("page_path", SLIDER_PAGES)
def test_sliders_render_once_and_switch_panels(browser, server, page_path):
    state = _widget_state(page_path)
    sliders = [m for m in state.values() if m["model_name"] in SLIDER_MODELS]
    page, log = open_page(browser, server, page_path)
    handles = page.locator(".widget-slider .noUi-handle")
    assert handles.count() == len(sliders), "each slider widget renders exactly once"
    for i in range(handles.count()):
        box = (
            page.locator(".widget-slider")
            .nth(i)
            .locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
        )
        readout = page.locator(".widget-slider").nth(i).locator(".widget-readout")
        # The slider's model, found by its label (the order of models in the saved state
        # need not be the order of the sliders on the page).
        label = (
            page.locator(".widget-slider")
            .nth(i)
            .locator(".widget-label")
            .inner_text()
            .strip()
        )
        model = [m for m in sliders if m["state"].get("description") == label]
        assert len(model) == 1, f"one slider model labelled {label!r}"
        options = model[0]["state"].get("_options_labels")
        seen = []
        for step in range(len(options) if options else 3):
            value = readout.inner_text().strip()
            visible = [
                c.inner_text()
                for c in box.locator(".aebook-caption").all()
                if c.is_visible()
            ]
            assert len(visible) == 1, f"one panel is shown at a time, found {visible}"
            # The caption of the shown panel names the slider's value ("k = 8: ..."),
            # and that of every other slider in the same box: two linked sliders show
            # the panel of both their values.
            for v in [value] + [
                r.inner_text().strip()
                for r in box.locator(".widget-slider .widget-readout").all()
            ]:
                assert re.search(rf"= {re.escape(v)}(?![\w.])", visible[0]), (
                    v,
                    visible[0],
                )
            images = tuple(
                im.get_attribute("src")
                for im in box.locator("img").all()
                if im.is_visible()
            )
            assert len(images) == 1, "the shown panel has one image"
            seen.append((value, visible[0], images))
            handles.nth(i).focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(100)
        # A second control (the kind of noise) picks which set of panels the slider
        # moves through.
        for button in box.locator(".widget-toggle-buttons button").all():
            button.click()
            page.wait_for_timeout(100)
            visible = [
                c.inner_text()
                for c in box.locator(".aebook-caption").all()
                if c.is_visible()
            ]
            assert (
                len(visible) == 1
                and button.inner_text().strip().lower() in visible[0].lower()
            ), visible
        values = [v for v, _, _ in seen]
        assert values == (options or values), (
            "the keyboard moves the slider through its values in order"
        )
        assert len({s for _, _, s in seen}) == len(seen), (
            "every position shows a different image"
        )
    page.close()
    assert log.errors == [] and log.unanswered == [], (log.errors, log.unanswered)


def test_widget_scripts_match_their_local_copies():
    """The integrity hashes in _config.yml hold for the files the test serves, so they
    hold on the CDN too."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    scripts = config["sphinx"]["config"]["nb_ipywidgets_js"]
    # html-manager 1.x is the one that speaks ipywidgets 8's protocol (myst-nb's default
    # is an old 1.0.6).
    manager = [url for url in scripts if "/@jupyter-widgets/html-manager@" in url]
    assert len(manager) == 1 and re.search(
        r"html-manager@1\.0\.(1[0-9]|[7-9])/", manager[0]
    ), manager
    for url, attrs in scripts.items():
        path = local_copy(url)
        assert path is not None, f"no local copy of {url}"
        digest = base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()
        assert attrs["integrity"] == f"sha384-{digest}", url


def test_widget_javascript_is_added_once_per_page():
    for page in SLIDER_PAGES:
        text = (HTML / page).read_text()
        assert text.count("embed-amd.js") == 1 and text.count("require.js") == 1, page
        assert text.count("application/vnd.jupyter.widget-state+json") == 1, page


@pytest.mark.parametrize("page_path", PAGES)
def test_page_size(page_path):
    assert (HTML / page_path).stat().st_size < 5_000_000, (
        "each chapter page stays under 5 MB"
    )


CHAPTERS = [p for p in PAGES if p.startswith("chapters/")]


@pytest.mark.parametrize("page_path", PAGES)
def test_code_fits_the_column(browser, server, page_path):
    # At 1280 px no code input scrolls sideways, folded ones included (opened for the
    # measurement).
    page, _ = open_page(browser, server, page_path)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    wide = page.evaluate("""Array.from(document.querySelectorAll('.cell_input pre'))
        .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
        .map(pre => pre.textContent.split('\\n')
            .reduce((a, b) => a.length >= b.length ? a : b))""")
    page.close()
    assert wide == [], (
        f"{len(wide)} code inputs scroll sideways; their longest lines: {wide[:5]}"
    )


@pytest.mark.parametrize("page_path", PAGES)
def test_no_cell_output_shows_a_stray_repr(browser, server, page_path):
    # A value a cell returned by accident, shown as plain text (np.float32(0.87),
    # Text(0.5, 0.98, '...')), or an object's default repr (<... at 0x7f...>) in what it
    # printed.
    page, _ = open_page(browser, server, page_path)
    results = page.evaluate("""Array.from(document.querySelectorAll(
        '.cell_output .output.text_plain')).map(el => el.textContent.trim())""")
    printed = page.evaluate("""Array.from(document.querySelectorAll('.cell_output pre'))
        .map(el => el.textContent)""")
    page.close()
    reprs = results + [t for t in printed if re.search(r"<[\w.]+( object)? at 0x", t)]
    assert reprs == [], f"stray reprs on the page: {reprs[:3]}"


@pytest.mark.parametrize("page_path", PAGES)
def test_printed_lines_fit_the_column(browser, server, page_path):
    # What a cell prints (text, tables as text, the package's source that show_source
    # shows) stays within 88 characters a line, as the code does: a longer line wraps
    # or scrolls. Results a reader compares are tables.
    page, _ = open_page(browser, server, page_path)
    printed = page.evaluate("""Array.from(document.querySelectorAll('.cell_output pre'))
        .map(el => el.textContent)""")
    page.close()
    long = [line for text in printed for line in text.split("\n") if len(line) > 88]
    assert long == [], f"{len(long)} printed lines over 88 characters: {long[:3]}"


@pytest.mark.parametrize("page_path", CHAPTERS)
def test_setup_cell_is_folded_and_the_page_opens_with_prose(browser, server, page_path):
    page, _ = open_page(browser, server, page_path)
    first = page.locator(".cell").first
    assert "tag_hide-input" in (first.get_attribute("class") or ""), (
        "the setup cell is tagged hide-input"
    )
    assert first.locator(".cell_input pre").first.is_visible() is False, (
        "its code is folded on the page"
    )
    # Above the setup cell there is the chapter's title and its motivation, in prose.
    prose = page.evaluate("""(() => {
        const cell = document.querySelector('.cell');
        let text = '', node = cell.previousElementSibling;
        while (node) {
            text = node.textContent + text;
            node = node.previousElementSibling;
        }
        return text.trim().length;
    })()""")
    page.close()
    assert prose > 200, "the page opens with its prose, not with plumbing"


@pytest.mark.parametrize("page_path", PAGES)
def test_every_figure_has_alt_text(browser, server, page_path):
    page, _ = open_page(browser, server, page_path)
    bad = page.evaluate("""
        Array.from(document.querySelectorAll('article.bd-article img'))
        .map(img => ({src: (img.currentSrc || img.src).slice(0, 80),
                      alt: (img.getAttribute('alt') || '').trim()}))
        .filter(i => i.alt.length < 15 || /\\.(png|jpe?g|svg)$/i.test(i.alt)
                     || i.alt.includes('_images/'))""")
    page.close()
    assert bad == [], f"images without alt text that says what they show: {bad[:5]}"


@pytest.mark.parametrize("page_path", PAGES)
def test_figures_stay_readable_in_dark_mode(browser, server, page_path):
    # In the theme's dark mode a transparent figure would show its black text on a dark
    # page: every figure must be opaque (its corners drawn, not see-through), so it
    # keeps its own light background.
    page, _ = open_page(browser, server, page_path)
    page.evaluate(
        "document.documentElement.dataset.theme = 'dark'; "
        "document.documentElement.dataset.mode = 'dark'"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") not in (
        "rgb(255, 255, 255)",
        "rgba(0, 0, 0, 0)",
    ), "the page switched to dark mode"
    see_through = page.evaluate("""
        Array.from(document.querySelectorAll('article.bd-article img'))
        .filter(img => img.complete && img.naturalWidth > 0)
        .filter(img => {
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d');
            g.drawImage(img, 0, 0);
            const corners = [[0, 0], [c.width - 1, 0], [0, c.height - 1],
                             [c.width - 1, c.height - 1]];
            return corners.some(([x, y]) => g.getImageData(x, y, 1, 1).data[3] < 255);
        }).map(img => (img.getAttribute('alt') || img.src).slice(0, 80))""")
    page.close()
    assert see_through == [], (
        f"transparent figures, unreadable in dark mode: {see_through}"
    )
