"""What a reader sees on every page: no sideways scrolling on a phone, no tracebacks, no raw TeX
in links, figures described by their captions, numbered chapters, a logo for both themes.

Each test loads the built site in a headless Chromium, offline (see conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_site import ALL_PAGES, NOTEBOOK_PAGES, PAGES

PHONE = 390


# ----------------------------------------------------------------------------- phones


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_does_not_scroll_sideways_on_a_phone(open_page, stem):
    page = open_page(stem, width=PHONE, height=844)
    page.wait_for_load_state("networkidle")
    widths = page.evaluate(
        "() => ({page: document.documentElement.scrollWidth,"
        " window: document.documentElement.clientWidth})"
    )
    if widths["page"] > widths["window"]:
        culprits = page.evaluate(
            """(w) => Array.from(document.querySelectorAll('.bd-article *'))
                .filter((e) => e.getBoundingClientRect().right > w + 1)
                .slice(0, 5).map((e) => e.tagName + ': ' + e.textContent.trim().slice(0, 60))""",
            widths["window"],
        )
        pytest.fail(f"{stem} is {widths['page']} px wide at {PHONE} px; too wide: {culprits}")


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_shows_no_traceback(open_page, stem):
    page = open_page(stem, javascript=False)
    blocks = page.eval_on_selector_all("pre", "els => els.map((e) => e.textContent)")
    shown = [
        [line for line in text.strip().splitlines() if line.strip()][-1][:100]  # the error line
        for text in blocks
        if "Traceback" in text or "site-packages" in text
    ]
    assert not shown, f"{stem} shows {len(shown)} traceback(s), ending in: {shown[:3]}"


# ----------------------------------------------------------------------------- links


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_link_texts_have_no_raw_tex(open_page, stem):
    """Every link (in the text, the chapter list and the page contents) reads as plain words.

    Checked with JavaScript off, as the HTML was built: MathJax would hide raw TeX in a link.
    """
    page = open_page(stem, javascript=False)
    texts = page.eval_on_selector_all("a", "els => els.map((a) => a.textContent.trim())")
    raw = sorted({t for t in texts if "\\" in t or "^" in t})
    assert not raw, f"links on {stem} with TeX in their text: {raw}"


# ----------------------------------------------------------------------------- figures


def _plain(text: str) -> str:
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


@pytest.mark.parametrize("stem", NOTEBOOK_PAGES)
def test_figures_are_described_by_their_captions(open_page, stem):
    page = open_page(stem, javascript=False)
    figures = page.eval_on_selector_all(
        "figure",
        """els => els.filter((f) => f.querySelector('img')).map((f) => ({
            alt: f.querySelector('img').getAttribute('alt') || '',
            caption: (f.querySelector('figcaption .caption-text') || f).textContent.trim()}))""",
    )
    if not figures:
        pytest.skip(f"{stem} has no figure")
    for figure in figures:
        alt, caption = figure["alt"], figure["caption"]
        assert alt and not re.search(r"\.(png|jpe?g|svg)$", alt), f"alt text is {alt!r}"
        words = _plain(re.sub(r"\\\(.*?\\\)", " ", caption)).split()  # the caption less its math
        remaining = iter(_plain(alt).split())
        assert all(word in remaining for word in words), f"alt {alt!r} is not {caption!r}"


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_every_image_has_alt_text(open_page, stem):
    page = open_page(stem, javascript=False)
    missing = page.eval_on_selector_all(
        "img", "els => els.filter((i) => !(i.getAttribute('alt') || '').trim()).map((i) => i.src)"
    )
    assert not missing, f"images without alt text on {stem}: {missing}"


# ----------------------------------------------------------------------------- numbering


def _chapter(stem: str) -> int:
    return int(re.match(r"notebooks/(\d+)_", stem).group(1))


@pytest.mark.parametrize("stem", NOTEBOOK_PAGES)
def test_chapter_number_in_title_tab_and_sidebar_matches_its_file(open_page, stem):
    number = _chapter(stem)
    page = open_page(stem, javascript=False)
    title = page.locator("article h1").first.inner_text().strip()
    assert title.startswith(f"{number}. "), f"{stem}: the title reads {title!r}"
    assert page.title().startswith(f"{number}. "), page.title()
    current = page.locator(".bd-docs-nav a.current").first.inner_text().strip()
    assert current.startswith(f"{number}. "), f"the sidebar entry reads {current!r}"


def test_previous_next_links_show_chapter_numbers(open_page):
    chapters = [stem for stem, is_nb in PAGES if is_nb]
    for before, stem, after in zip(chapters, chapters[1:], chapters[2:], strict=False):
        page = open_page(stem, javascript=False)
        previous = page.locator("a.left-prev .prev-next-title").inner_text().strip()
        following = page.locator("a.right-next .prev-next-title").inner_text().strip()
        assert previous.startswith(f"{_chapter(before)}. "), (stem, previous)
        assert following.startswith(f"{_chapter(after)}. "), (stem, following)


@pytest.mark.parametrize("stem", NOTEBOOK_PAGES)
def test_figures_and_exercises_are_numbered_per_chapter(open_page, stem):
    number = _chapter(stem)
    page = open_page(stem, javascript=False)
    figures = page.eval_on_selector_all(
        "figcaption .caption-number", "els => els.map((e) => e.textContent.trim())"
    )
    assert figures == [f"Fig. {number}.{k}" for k in range(1, len(figures) + 1)], figures
    exercises = page.eval_on_selector_all(
        ".exercise > .admonition-title", "els => els.map((e) => e.textContent.trim())"
    )
    labels = [re.match(r"Exercise [\d.]+", text).group() for text in exercises]
    assert labels == [f"Exercise {number}.{k}" for k in range(1, len(labels) + 1)], exercises


# ----------------------------------------------------------------------------- theme, index


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_logo_title_is_readable_in_both_themes(open_page, site_dir, theme):
    page = open_page(PAGES[0][0], theme=theme)
    page.wait_for_function(f"() => document.documentElement.dataset.theme === '{theme}'")
    logos = page.locator("img.logo__image")
    shown = [logos.nth(i) for i in range(logos.count()) if logos.nth(i).is_visible()]
    assert len(shown) == 1, f"{len(shown)} logos visible in {theme} mode"
    src = shown[0].get_attribute("src")
    svg = (site_dir / "_static" / Path(src).name).read_text(encoding="utf-8")
    fills = re.findall(r'<text[^>]*fill="(#[0-9a-fA-F]{6})"', svg)
    assert fills, f"no title text in {src}"
    background = page.evaluate(
        "() => getComputedStyle(document.querySelector('.bd-sidebar-primary')).backgroundColor"
    )
    rgb = [int(v) for v in re.findall(r"\d+", background)[:3]]
    for fill in fills:
        text = [int(fill[i : i + 2], 16) for i in (1, 3, 5)]
        assert _contrast(text, rgb) >= 4.5, f"{theme}: title {fill} on {background}"


def _contrast(a: list[int], b: list[int]) -> float:
    def luminance(rgb):
        channels = [c / 255 for c in rgb]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted([luminance(a), luminance(b)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_no_empty_general_index(site_dir):
    index = site_dir / "genindex.html"
    if index.is_file():  # filled, then: it must list entries
        assert "genindex-entries" in index.read_text(encoding="utf-8") or re.search(
            r"<td[^>]*>\s*<ul>\s*<li>", index.read_text(encoding="utf-8")
        ), "genindex.html is built but lists no entry"
    else:
        for html in site_dir.rglob("*.html"):
            assert 'href="genindex.html"' not in html.read_text(encoding="utf-8"), html


# ----------------------------------------------------------------------------- solutions


@pytest.mark.parametrize("stem", NOTEBOOK_PAGES)
def test_clicking_a_solution_title_opens_the_solution(open_page, stem):
    from playwright.sync_api import expect

    page = open_page(stem)
    solutions = page.locator(".solution.dropdown")
    if not solutions.count():
        pytest.skip(f"{stem} has no solution")
    for i in range(solutions.count()):
        solution = solutions.nth(i)
        body = solution.locator(":scope > :not(.admonition-title)").first
        link = solution.locator(":scope > .admonition-title a").first
        expect(body).to_be_hidden()
        before = page.url
        (link if link.count() else solution.locator(":scope > .admonition-title")).click()
        expect(body).to_be_visible()
        assert page.url == before, f"clicking the title jumped to {page.url}"


# ----------------------------------------------------------------------------- citations


def test_each_cited_work_has_its_own_citation_text(site_dir):
    """No two references share an author-year text ("PyTorch Contributors, 2026a ... g" did)."""
    texts: dict[str, set[str]] = {}
    for html in site_dir.rglob("*.html"):
        # {cite:t} links the year only, after the authors' names: "Kipf and Welling [2017]"
        page = html.read_text(encoding="utf-8")
        for match in re.finditer(
            r'<a class="reference internal" href="([^"]*references\.html#[^"]+)"[^>]*>([^<]+)</a>',
            page,
        ):
            href, text = match.groups()
            if re.fullmatch(r"\d{4}[a-z]?", text.strip()):
                before = re.sub(r"<[^>]*>", "", page[max(0, match.start() - 300) : match.start()])
                authors = before.rsplit("[", 1)[0].split()[-3:]
                text = f"{' '.join(authors)} {text.strip()}"
            texts.setdefault(text.strip(), set()).add(href.rsplit("#", 1)[1])
    assert len(texts) >= 10, f"only {len(texts)} citation texts found"
    shared = {text: targets for text, targets in texts.items() if len(targets) > 1}
    assert not shared, f"one citation text for several works: {shared}"
    suffixed = sorted(t for t in texts if re.search(r"\b\d{4}[a-z]\b", t))
    assert not suffixed, f"citations told apart only by a letter: {suffixed}"
