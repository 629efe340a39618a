"""Fixtures of the browser tests: the built site served on 127.0.0.1 and a headless Chromium.

The site is never built here: build it first (`make book`, or `jupyter-book build .`), or point
SITE_DIR at another build. Chromium is Debian's (/usr/bin/chromium) or the one named by CHROMIUM;
Playwright never downloads a browser. Without a browser the tests skip, except on CI (CI set).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROWSER_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "no Chromium found: install it (Debian/Ubuntu: sudo apt-get install chromium) or set "
    "CHROMIUM=/path/to/chromium; never `playwright install`"
)


def _skip_or_fail(reason: str) -> None:
    """Skip on a learner's machine; fail on CI, where a skipped browser test hides a break."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def find_chromium() -> str | None:
    """Return CHROMIUM if set, else the first Chromium or Chrome found on this machine."""
    named = os.environ.get("CHROMIUM")
    if named:
        if not (Path(named).is_file() and os.access(named, os.X_OK)):
            pytest.fail(f"CHROMIUM={named!r} is not an executable file")
        return named
    candidates = [
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def site_dir() -> Path:
    """The built website: SITE_DIR, or _build/html of the repository."""
    site = Path(os.environ.get("SITE_DIR", "_build/html"))
    site = site if site.is_absolute() else ROOT / site
    if not (site / "index.html").is_file():
        pytest.fail(
            f"no built site at {site} (index.html is missing): run `make book` "
            "(or jupyter-book build .) first"
        )
    return site


@pytest.fixture(scope="session")
def screenshot_dir(site_dir: Path) -> Path:
    """Where full-page screenshots go: beside the site, i.e. _build/screenshots by default."""
    folder = site_dir.parent / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # keep pytest's output clean; failures are reported by the tests


@pytest.fixture(scope="session")
def base_url(site_dir: Path) -> Iterator[str]:
    """Serve the site over HTTP on 127.0.0.1, on a free port, from a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright's sync API."""
    executable = find_chromium()
    if executable is None:
        _skip_or_fail(INSTALL_HINT)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed: pip install -r requirements.txt")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=executable, args=BROWSER_ARGS, headless=True
        )
    except Exception as err:
        playwright.stop()
        pytest.fail(f"could not launch {executable}: {err}")
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture
def open_page(browser, base_url):
    """open_page(stem, width=1280, ...) -> a Playwright page of the site, offline; closed after.

    Args of the returned function: the page's stem (``notebooks/02_self_attention``), the window
    ``width`` and ``height`` in CSS px, ``javascript`` (False shows the HTML as built, before any
    script or MathJax changes it) and ``theme`` ("light" or "dark", stored as the theme's choice
    before the page loads).
    """
    from urllib.parse import urljoin, urlparse

    contexts = []

    def open_(
        stem: str,
        *,
        width: int = 1280,
        height: int = 900,
        javascript: bool = True,
        theme: str | None = None,
    ):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            java_script_enabled=javascript,
            service_workers="block",
        )
        contexts.append(context)
        context.set_default_timeout(20_000)
        context.route(
            "**/*",
            lambda r: (
                r.abort() if urlparse(r.request.url).hostname != "127.0.0.1" else r.continue_()
            ),
        )
        if theme is not None:  # pydata-sphinx-theme reads the mode from localStorage
            context.add_init_script(f"localStorage.setItem('mode', '{theme}');")
        page = context.new_page()
        page.goto(urljoin(base_url, f"{stem}.html"), wait_until="load")
        return page

    yield open_
    for context in contexts:
        context.close()
