"""Browser tests of the Chinese website (make book-zh), offline, in the published layout.

The English site (SITE_DIR, default _build/html) is served at the root and the Chinese site
(SITE_ZH_DIR, default _build/html-zh) in its folder (zh/, from _config.yml's course_editions),
as .github/workflows/publish.yml publishes them, so the EN ⇄ 中文 links are followed as a reader
follows them. Every page of the Chinese site is loaded once, with every request beyond the
local server blocked, and checked like the English pages (tests/site/test_site.py): no console
errors, no missing resource, images decoded, math typeset. Screenshots go to _build/screenshots/
(zh-*.png): every Chinese page, and the search results for 掩码.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urljoin, urlparse
from urllib.request import urlopen

import pytest
import yaml
from test_site import PAGES, TIMEOUT_MS, _allowed, _load

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
EDITIONS = CONFIG["sphinx"]["config"]["course_editions"]
LANGUAGE = "zh_CN"
FOLDER = EDITIONS[LANGUAGE]["path"]  # "zh/"
ZH_PAGES = [pytest.param(stem, id=stem) for stem, _ in PAGES]

# A search on the Chinese site and a page it must find (Chinese words are segmented by jieba,
# with the glossary's terms as words; English identifiers are found too).
SEARCHES = [
    ("掩码", "notebooks/03_masks"),
    ("多头注意力", "notebooks/04_multi_head_attention"),
    ("RoPE", "notebooks/05_position_information"),
    ("KV cache", "notebooks/08_decoding_kv_cache"),
]


@pytest.fixture(scope="session")
def zh_site_dir() -> Path:
    """The built Chinese website: SITE_ZH_DIR, or _build/html-zh of the repository."""
    site = Path(os.environ.get("SITE_ZH_DIR", "_build/html-zh"))
    site = site if site.is_absolute() else ROOT / site
    if not (site / "index.html").is_file():
        pytest.fail(f"no Chinese site at {site} (index.html is missing): run `make book-zh` first")
    return site


class _EditionsHandler(SimpleHTTPRequestHandler):
    """The English site at the root and the Chinese one in its folder (the published layout)."""

    def __init__(self, *args, zh_directory: str, **kwargs):
        self.zh_directory = zh_directory
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass

    def translate_path(self, path: str) -> str:
        route = urlparse(path).path
        if route.startswith(f"/{FOLDER}") or route == f"/{FOLDER.rstrip('/')}":
            inner = "/" + route[len(FOLDER) + 1 :]
            translated = super().translate_path(inner)
            relative = os.path.relpath(translated, self.directory)
            return os.path.join(self.zh_directory, relative)
        return super().translate_path(path)


@pytest.fixture(scope="session")
def editions_url(site_dir: Path, zh_site_dir: Path):
    """Serve both editions on 127.0.0.1; yields the English root URL."""
    handler = functools.partial(
        _EditionsHandler, directory=str(site_dir), zh_directory=str(zh_site_dir)
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="editions-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def zh_visit(browser, editions_url, screenshot_dir):
    """zh_visit(stem) -> Visit of the Chinese page, loaded once per session."""
    cache: dict = {}

    def get(stem: str):
        if stem not in cache:
            shot = screenshot_dir / f"zh-{stem.replace('/', '-')}.png"
            try:
                cache[stem] = _load(browser, urljoin(editions_url, f"{FOLDER}{stem}.html"), shot)
            except Exception as err:
                cache[stem] = f"loading {FOLDER}{stem}.html failed: {type(err).__name__}: {err}"
        if isinstance(cache[stem], str):
            pytest.fail(cache[stem])
        return cache[stem]

    return get


# ----------------------------------------------------------------------------- every page


@pytest.mark.parametrize("stem", ZH_PAGES)
def test_zh_page_loads_offline_without_errors(zh_visit, stem):
    v = zh_visit(stem)
    assert v.status == 200, f"{FOLDER}{stem}.html answered {v.status}"
    errors = [(t, s) for t, s in v.console_errors] + [(t, "") for t in v.page_errors]
    unexpected = [f"{t} (from {s or 'a script'})" for t, s in errors if not _allowed(t, s, True)]
    assert not unexpected, f"errors on {FOLDER}{stem}: {unexpected}"
    missing = [(u, s) for u, s in v.bad_responses if not urlparse(u).path.endswith("favicon.ico")]
    assert not missing, f"{FOLDER}{stem} requests missing files: {missing}"
    assert not v.failed_requests, f"{FOLDER}{stem}: requests failed: {v.failed_requests}"
    assert not v.blocked, f"{FOLDER}{stem} reaches beyond the site: {v.blocked}"
    broken = [i["src"] for i in v.images if not (i["complete"] and i["width"] > 0)]
    assert v.images and not broken, f"images that do not load on {FOLDER}{stem}: {broken}"


@pytest.mark.parametrize("stem", ZH_PAGES)
def test_zh_page_math_is_typeset(zh_visit, stem):
    math = zh_visit(stem).math
    if not math["spans"]:
        pytest.skip(f"{stem} has no math")
    assert zh_visit(stem).mathjax_error is None, zh_visit(stem).mathjax_error
    assert math["containers"] >= math["spans"], math
    assert not math["untypeset"], f"math left as raw TeX on {FOLDER}{stem}: {math['untypeset']}"
    assert not math["merrors"], f"MathJax errors on {FOLDER}{stem}: {math['merrors']}"


@pytest.mark.parametrize("stem", ZH_PAGES)
def test_zh_page_is_in_chinese(zh_site_dir, stem):
    html = (zh_site_dir / f"{stem}.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN"' in html, f"{stem}: the page does not declare zh-CN"
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert re.search(r"[\u4e00-\u9fff]", title), f"{stem}: the page title is not Chinese: {title}"
    captions = re.findall(r'role="heading"><span class="caption-text">([^<]*)<', html)  # sidebar
    english = [c for c in captions if not re.search(r"[\u4e00-\u9fff]", c)]
    assert captions and not english, f"{stem}: sidebar captions not translated: {english}"


@pytest.mark.parametrize("stem", [s for s in ZH_PAGES if s.values[0].startswith("notebooks/")])
def test_zh_colab_link_opens_the_chinese_learner_notebook(zh_visit, stem):
    """The learner branch holds the Chinese edition in the edition's folder (publish.yml)."""
    repo = urlparse(CONFIG["repository"]["url"]).path.strip("/")
    branch = CONFIG["repository"]["branch"]
    expected = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{FOLDER}{stem}.ipynb"
    colab = [u for u in zh_visit(stem).launch_links if u.startswith("https://colab.")]
    assert colab == [expected], f"the Colab link of {FOLDER}{stem} is {colab}, not {expected}"


# ----------------------------------------------------------------------------- EN ⇄ 中文


class _EditionLinks(HTMLParser):
    """The links of the language switch: {language: href}."""

    def __init__(self):
        super().__init__()
        self.links: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "course-edition" in (attrs.get("class") or "").split():
            self.links[attrs.get("data-edition", "")] = attrs.get("href", "")


def _switch(url: str) -> tuple[int, dict[str, str]]:
    with urlopen(url, timeout=10) as response:
        parser = _EditionLinks()
        parser.feed(response.read().decode("utf-8"))
        return response.status, parser.links


@pytest.mark.parametrize("stem", ZH_PAGES)
def test_edition_links_resolve_both_ways(editions_url, stem):
    english_url = urljoin(editions_url, f"{stem}.html")
    chinese_url = urljoin(editions_url, f"{FOLDER}{stem}.html")
    status, links = _switch(english_url)
    assert status == 200 and LANGUAGE in links, f"{stem}.html has no link to the Chinese page"
    assert urljoin(english_url, links[LANGUAGE]) == chinese_url, links
    status, links = _switch(chinese_url)
    assert status == 200 and "en" in links, f"{FOLDER}{stem}.html has no link to the English page"
    assert urljoin(chinese_url, links["en"]) == english_url, links


def test_switch_is_clickable_in_the_header(browser, editions_url):
    """A reader clicks 中文 on an English chapter and EN on the Chinese one, and lands right."""
    stem = next((s for s, is_nb in PAGES if is_nb), PAGES[0][0])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/])"), lambda r: r.abort())
    try:
        page = context.new_page()
        page.goto(urljoin(editions_url, f"{stem}.html"), timeout=TIMEOUT_MS)
        page.locator(".bd-header-article a.course-edition[data-edition='zh_CN']").first.click()
        page.wait_for_url(f"**/{FOLDER}{stem}.html", timeout=TIMEOUT_MS)
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        page.locator(".bd-header-article a.course-edition[data-edition='en']").first.click()
        page.wait_for_url(urljoin(editions_url, f"{stem}.html"), timeout=TIMEOUT_MS)
    finally:
        context.close()


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize(("query", "expected"), SEARCHES, ids=[q for q, _ in SEARCHES])
def test_zh_search_finds_the_chapter(browser, editions_url, screenshot_dir, query, expected):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/])"), lambda r: r.abort())
    try:
        page = context.new_page()
        page.goto(urljoin(editions_url, f"{FOLDER}search.html?q={quote(query)}"))
        page.wait_for_function(
            "() => document.querySelector('#search-results .search-summary')"
            " && !/^\\s*$/.test(document.querySelector('#search-results .search-summary')"
            ".textContent) && document.querySelectorAll('#search-results ul.search li').length"
            " + (/0/.test(document.querySelector('#search-results .search-summary').textContent)"
            " ? 1 : 0) > 0",
            timeout=TIMEOUT_MS,
        )
        found = page.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map((a) => a.href)"
        )
        if query == "掩码":
            page.screenshot(path=str(screenshot_dir / "zh-search-mask.png"), full_page=True)
    finally:
        context.close()
    pages = [urlparse(u).path for u in found]
    assert any(p.endswith(f"/{FOLDER}{expected}.html") for p in pages), (
        f"searching {query!r} on the Chinese site did not find {expected}: {pages}"
    )
