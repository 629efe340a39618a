"""Browser tests of the built website: every page of _toc.yml in a headless Chromium, offline.

Each page is loaded once, with every request to a host other than 127.0.0.1 blocked, so the
site is proven to work with no network; what the load showed is recorded and each property is
its own test. A full-page screenshot of each page goes to _build/screenshots/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import yaml

from tests.toc import toc_pages

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 20_000
MATHJAX_TIMEOUT_MS = 10_000
# Every URL but the local server's. A regex (unlike a Python callable) is matched inside the
# browser driver, so local requests are not slowed down by a round trip through Python.
NOT_LOCAL = re.compile(r"^(?!https?://127\.0\.0\.1[:/])")

# Known, harmless errors of Jupyter Book 1 pages: console messages of type "error" and uncaught
# page errors. (The duplicated THEBE_JS_URL declaration is gone: book/_ext/course_site.py drops
# Thebe, which the book does not use.)
# Each entry: (regex on the message, regex on the URL it came from, when it applies).
ALLOWED_ERRORS = [
    # pydata-sphinx-theme logs this on a first visit, before a light/dark mode is stored.
    (r"invalid theme mode", r".*", "always"),
    # Chromium asks for /favicon.ico by itself; harmless only when the site sets no favicon.
    (r"status of 404", r"/favicon\.ico$", "no-favicon"),
]


PAGES = toc_pages()
ALL_PAGES = [pytest.param(stem, id=stem) for stem, _ in PAGES]
NOTEBOOK_PAGES = [pytest.param(stem, id=stem) for stem, is_nb in PAGES if is_nb] or [
    pytest.param(None, id="none", marks=pytest.mark.skip(reason="no notebook in _toc.yml"))
]


@dataclass
class Visit:
    """What one load of a page showed."""

    url: str
    status: int | None = None
    console_errors: list[tuple[str, str]] = field(default_factory=list)  # (text, source url)
    page_errors: list[str] = field(default_factory=list)
    bad_responses: list[tuple[str, int]] = field(default_factory=list)
    failed_requests: list[tuple[str, str]] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    math: dict = field(default_factory=dict)
    mathjax_scripts: list[dict] = field(default_factory=list)
    launch_links: list[str] = field(default_factory=list)
    has_favicon: bool = False
    solutions: int = 0
    mathjax_error: str | None = None
    screenshot: Path | None = None


IMAGES_JS = """async () => {
  const images = Array.from(document.images);
  for (const img of images) img.loading = "eager";  // lazy images below the fold load too
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  return images.map((img) => ({
    src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth,
  }));
}"""

MATH_JS = """() => {
  const maths = Array.from(document.querySelectorAll(".math"));
  const prose = document.body.cloneNode(true);
  prose.querySelectorAll("pre, code, script, style, mjx-container").forEach((e) => e.remove());
  return {
    spans: maths.length,
    containers: document.querySelectorAll("mjx-container").length,
    untypeset: maths.filter((m) => !m.querySelector("mjx-container"))
                    .map((m) => m.textContent.trim().slice(0, 80)),
    merrors: Array.from(document.querySelectorAll(".mjx-merror, mjx-merror"))
                  .map((e) => e.textContent.slice(0, 80)),
    raw_dollars: prose.textContent.includes("$$"),
  };
}"""

SCRIPTS_JS = """() => Array.from(document.querySelectorAll("script[src]"))
  .filter((s) => /mathjax/i.test(s.getAttribute("src")))
  .map((s) => ({attr: s.getAttribute("src"), resolved: s.src}))"""


def _load(browser, url: str, screenshot: Path | None) -> Visit:
    visit = Visit(url=url)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)

    def block(r) -> None:
        visit.blocked.append(r.request.url)
        r.abort("internetdisconnected")

    context.route(NOT_LOCAL, block)  # the site must work offline: only 127.0.0.1 answers
    page = context.new_page()
    page.on(
        "console",
        lambda m: (
            m.type == "error" and visit.console_errors.append((m.text, m.location.get("url", "")))
        ),
    )
    page.on("pageerror", lambda err: visit.page_errors.append(str(err)))
    page.on(
        "response",
        lambda r: r.status >= 400 and visit.bad_responses.append((r.url, r.status)),
    )
    page.on(
        "requestfailed",
        lambda r: (
            urlparse(r.url).hostname == "127.0.0.1"
            and visit.failed_requests.append((r.url, r.failure or ""))
        ),
    )
    try:
        response = page.goto(url, wait_until="load")
        visit.status = response.status if response else None
        if page.locator(".math").count():
            try:
                page.wait_for_function(
                    "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                    timeout=MATHJAX_TIMEOUT_MS,
                )
                page.evaluate("() => MathJax.startup.promise.then(() => true)")
            except Exception as err:  # recorded; test_page_math_is_typeset_offline reports it
                visit.mathjax_error = f"MathJax did not start: {str(err).splitlines()[0]}"
        page.wait_for_load_state("networkidle")
        visit.images = page.evaluate(IMAGES_JS)
        visit.math = page.evaluate(MATH_JS)
        visit.mathjax_scripts = page.evaluate(SCRIPTS_JS)
        visit.launch_links = page.eval_on_selector_all(
            ".dropdown-launch-buttons a[href]", "links => links.map((a) => a.href)"
        )
        visit.has_favicon = page.locator("link[rel~='icon']").count() > 0
        visit.solutions = page.locator(".solution").count()
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
            visit.screenshot = screenshot
    finally:
        context.close()
    return visit


@pytest.fixture(scope="session")
def visit(browser, base_url, screenshot_dir):
    """visit(stem) -> Visit: load each page once per session, whatever tests ask about it."""
    cache: dict[str, Visit | str] = {}

    def get(stem: str) -> Visit:
        if stem not in cache:
            shot = screenshot_dir / f"{stem.replace('/', '-')}.png"
            try:
                cache[stem] = _load(browser, urljoin(base_url, f"{stem}.html"), shot)
            except Exception as err:  # fail each test of this page at once, not after a retry
                cache[stem] = f"loading {stem}.html failed: {type(err).__name__}: {err}"
        if isinstance(cache[stem], str):
            pytest.fail(cache[stem])
        return cache[stem]

    return get


def _allowed(text: str, source: str, has_favicon: bool) -> bool:
    for text_re, source_re, when in ALLOWED_ERRORS:
        if when == "no-favicon" and has_favicon:
            continue
        if re.search(text_re, text, re.I) and re.search(source_re, source):
            return True
    return False


# ----------------------------------------------------------------------------- every page


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_loads_with_http_200(visit, stem):
    assert visit(stem).status == 200, f"{stem}.html answered {visit(stem).status}"


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_has_no_console_or_page_errors(visit, stem):
    v = visit(stem)
    errors = [(text, source) for text, source in v.console_errors]
    errors += [(text, "") for text in v.page_errors]
    unexpected = [
        f"{text} (from {source or 'a script'})"
        for text, source in errors
        if not _allowed(text, source, v.has_favicon)
    ]
    assert not unexpected, f"errors on {stem}: {unexpected}"


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_resources_all_load(visit, stem):
    v = visit(stem)
    missing = [(u, s) for u, s in v.bad_responses if not urlparse(u).path.endswith("/favicon.ico")]
    assert not missing, f"{stem} requests missing files: {missing}"
    assert not v.failed_requests, f"{stem}: requests failed: {v.failed_requests}"


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_needs_no_network(visit, stem):
    assert not visit(stem).blocked, f"{stem} reaches beyond the site: {visit(stem).blocked}"


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_images_decode(visit, stem):
    images = visit(stem).images
    assert images, f"{stem} shows no image at all (not even the logo)"
    broken = [img["src"] for img in images if not (img["complete"] and img["width"] > 0)]
    assert not broken, f"images that do not load on {stem}: {broken}"


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_math_is_typeset_offline(visit, stem):
    math = visit(stem).math
    if not math["spans"]:
        pytest.skip(f"{stem} has no math")
    assert visit(stem).mathjax_error is None, f"{stem}: {visit(stem).mathjax_error}"
    assert math["containers"] >= math["spans"], math
    assert not math["untypeset"], f"math left as raw TeX on {stem}: {math['untypeset']}"
    assert not math["merrors"], f"MathJax errors on {stem}: {math['merrors']}"
    assert not math["raw_dollars"], f"raw $$ left in the text of {stem}"


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_mathjax_is_served_by_the_site(visit, stem):
    v = visit(stem)
    if not v.math["spans"]:
        pytest.skip(f"{stem} has no math")
    assert v.mathjax_scripts, f"{stem} has math but loads no MathJax script"
    origin = urlparse(v.url).netloc
    for script in v.mathjax_scripts:
        assert not re.match(r"^(\w+:)?//", script["attr"]), f"MathJax from a CDN: {script}"
        assert urlparse(script["resolved"]).netloc == origin, script


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_screenshot_is_saved(visit, stem):
    shot = visit(stem).screenshot
    assert shot is not None and shot.is_file()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_index_redirects_to_root_page(browser, base_url):
    root = PAGES[0][0]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(base_url, wait_until="load", timeout=TIMEOUT_MS)
        page.wait_for_url(f"**/{root}.html", timeout=TIMEOUT_MS)
        assert page.url == urljoin(base_url, f"{root}.html")
    finally:
        context.close()


# ----------------------------------------------------------------------------- solutions, Colab


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_solutions_stay_hidden_until_clicked(browser, base_url, visit, stem):
    from playwright.sync_api import expect

    if not visit(stem).solutions:
        pytest.skip(f"{stem} has no solution")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route(
        "**/*",
        lambda r: r.abort() if urlparse(r.request.url).hostname != "127.0.0.1" else r.continue_(),
    )
    try:
        page = context.new_page()
        page.goto(urljoin(base_url, f"{stem}.html"), wait_until="load", timeout=TIMEOUT_MS)
        solutions = page.locator(".solution")
        assert solutions.count() == visit(stem).solutions
        for i in range(solutions.count()):
            solution = solutions.nth(i)
            title = solution.locator(":scope > .admonition-title, :scope > summary").first
            body = solution.locator(":scope > :not(.admonition-title):not(summary)").first
            expect(title).to_be_visible()
            expect(body).to_be_hidden()
            button = title.locator(".toggle-button")
            (button if button.count() else title).click()
            expect(body).to_be_visible()
    finally:
        context.close()


@pytest.mark.parametrize("stem", NOTEBOOK_PAGES)
def test_colab_link_opens_the_chapter_notebook(visit, stem):
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = urlparse(config["repository"]["url"]).path.strip("/")
    branch = config["repository"].get("branch", "main")
    book = config["repository"].get("path_to_book", "").strip("/")
    notebook = f"{book}/{stem}.ipynb".lstrip("/")
    colab = [
        h
        for h in visit(stem).launch_links
        if h.startswith("https://colab.research.google.com/github/")
    ]
    assert colab, f"no Colab link in the launch menu of {stem}: {visit(stem).launch_links}"
    expected = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{notebook}"
    assert colab[0] == expected, f"the Colab link is {colab[0]}, expected {expected}"
    assert colab[0].endswith(f"{stem}.ipynb")
    assert (ROOT / notebook).is_file(), f"the Colab link points to {notebook}, which does not exist"
