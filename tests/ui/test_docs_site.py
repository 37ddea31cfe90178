"""The documentation site (issue 17) in the browser: built with `mkdocs build --strict` from this
checkout into a temporary folder, served on 127.0.0.1, opened in the UI tests' Chromium.

The notebook pages take their outputs from the tests' QUICK runs (tests/notebook_runner.py):
the ones kept in LIFSG_EXECUTED_NOTEBOOKS, and the run of FIGURE_NOTEBOOK (made here if this
session has not made it yet), whose page must show its figures. Every page is visited: no
console error, no failed request, and every internal link, image and anchor resolves.
"""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from notebook_runner import REPO, execute

FIGURE_NOTEBOOK = "02_operating_modes"
BUILD_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder."""
    pytest.importorskip("mkdocs", reason="the docs packages are not installed (make docs)")
    tmp = tmp_path_factory.mktemp("docs")
    executed = tmp / "executed"
    executed.mkdir()
    kept = os.environ.get("LIFSG_EXECUTED_NOTEBOOKS")
    if kept and os.path.isdir(kept):
        for nb in os.listdir(kept):
            shutil.copy2(os.path.join(kept, nb), executed / nb)
    shutil.copy2(execute(FIGURE_NOTEBOOK) / f"{FIGURE_NOTEBOOK}.ipynb", executed)
    env = dict(os.environ, LIFSG_EXECUTED_NOTEBOOKS=str(executed), NO_MKDOCS_2_WARNING="1")
    env.pop("LIFSG_DOCS_REQUIRE_OUTPUTS", None)  # the other notebooks may not have run
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml")]
        + ["--site-dir", str(tmp / "site")],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert build.returncode == 0, f"mkdocs build failed:\n{build.stderr[-6000:]}"
    return tmp / "site"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url(site):
    """http://127.0.0.1:<port>/ serving the site."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class Visit:
    """A page opened in a fresh page of the browser, with its console errors and failed
    requests."""

    def __init__(self, browser, url):
        self.page = browser.new_page()
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.response = self.page.goto(url, wait_until="load")
        assert self.response is not None and self.response.ok, f"{url}: {self.response}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.page.close()


def test_api_page_shows_the_docstrings_and_cross_references(browser, base_url):
    with Visit(browser, base_url + "api/lifsg.layers.html") as v:
        assert "lifsg.layers" in v.page.locator("h1").first.inner_text()
        lif = v.page.locator('[id="lifsg.layers.LIF"]')
        assert lif.count() == 1 and lif.is_visible()
        assert "Leaky-integrate-and-fire neurons over time" in v.page.inner_text("article")
        # a reST role of a docstring became a working cross-reference
        link = v.page.locator('article a[href*="lifsg.surrogates.html#lifsg.surrogates.Surrogate"]')
        assert link.count() >= 1
        assert v.errors == []
    with Visit(browser, base_url + "api/lifsg.surrogates.html") as v:
        text = v.page.inner_text("article")
        assert "1 / (beta*|u| + 1)**2" in text  # superspike's derivative formula
        assert v.errors == []


def test_notebook_page_shows_its_figures(browser, base_url):
    with Visit(browser, base_url + f"notebooks/{FIGURE_NOTEBOOK}.html") as v:
        assert "QUICK run" in v.page.inner_text("article")
        images = v.page.locator(f'article img[src*="{FIGURE_NOTEBOOK}_files/"]')
        assert images.count() >= 1
        for i in range(images.count()):
            size = images.nth(i).evaluate("img => img.complete ? img.naturalWidth : 0")
            assert size > 100, f"figure {i} did not load"
        assert v.errors == []


def test_model_page_renders_the_equations(browser, base_url):
    with Visit(browser, base_url + "model.html") as v:
        blocks = v.page.locator('article math[display="block"]')
        assert blocks.count() >= 4
        assert all(blocks.nth(i).bounding_box()["height"] > 10 for i in range(blocks.count()))
        assert "\\mathrm" not in v.page.inner_text("article")  # no TeX left unconverted
        assert v.errors == []


LINKS = """() => [
  ...Array.from(document.querySelectorAll('a[href]'), a => a.href),
  ...Array.from(document.querySelectorAll('img[src], script[src]'), e => e.src),
  ...Array.from(document.querySelectorAll('link[href]'), e => e.href),
]"""
IDS = "() => Array.from(document.querySelectorAll('[id], a[name]'), e => e.id || e.name)"


def _is_page(path):
    return path.endswith("/") or path.endswith(".html")


def test_every_page_without_console_errors_or_broken_internal_links(browser, base_url):
    queue, ids, errors, assets, anchors = [base_url], {}, [], set(), set()
    while queue:
        url = queue.pop()
        if url in ids:
            continue
        with Visit(browser, url) as v:
            errors += [f"{url}: {e}" for e in v.errors]
            ids[url] = set(v.page.evaluate(IDS))
            for link in v.page.evaluate(LINKS):
                target, fragment = urllib.parse.urldefrag(link)
                if not target.startswith(base_url):
                    continue
                if _is_page(urllib.parse.urlparse(target).path):
                    queue.append(target)
                    if fragment:
                        anchors.add((url, target, urllib.parse.unquote(fragment)))
                else:
                    assets.add((url, target))
    for page, asset in sorted(assets):
        try:
            urllib.request.urlopen(asset, timeout=30).close()
        except urllib.error.URLError as e:
            errors.append(f"{page}: broken link {asset} ({e})")
    for page, target, fragment in sorted(anchors):
        if fragment not in ids[target]:
            errors.append(f"{page}: no anchor #{fragment} in {target}")
    assert len(ids) >= 20, f"only {len(ids)} pages found"
    assert errors == []
