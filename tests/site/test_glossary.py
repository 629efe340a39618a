"""The glossary is sorted, every term has an anchor, and every link to a term lands on one.

Terms are entries of a Sphinx ``{glossary}`` (book/glossary.md, ``:sorted:``); chapters link them
with ``{term}`` (a missing term fails the ``-n -W`` build). Checked on the built HTML.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.entries: list[list[str]] = []  # the term names of each entry, in page order
        self._in_dt = False
        self._text = ""
        self._after_dd = True

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "dt":
            self._in_dt, self._text = True, ""
            if self._after_dd:
                self.entries.append([])
                self._after_dd = False
        if tag == "dd":
            self._after_dd = True

    def handle_endtag(self, tag):
        if tag == "dt" and self._in_dt:
            self._in_dt = False
            self.entries[-1].append(self._text.replace("¶", "").strip().rstrip("#").strip())

    def handle_data(self, data):
        if self._in_dt:
            self._text += data


def _parse(path: Path) -> _Collect:
    parser = _Collect()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def glossary(site_dir):
    return _parse(site_dir / "book" / "glossary.html")


def test_glossary_entries_are_sorted(glossary):
    first_names = [names[0] for names in glossary.entries]
    assert len(first_names) >= 30, first_names

    def key(term: str) -> str:
        return unicodedata.normalize("NFD", term.lower())

    assert first_names == sorted(first_names, key=key), "the glossary is not in alphabetical order"


def test_every_term_has_its_own_anchor(site_dir):
    html = (site_dir / "book" / "glossary.html").read_text(encoding="utf-8")
    terms = re.findall(r'<dt id="(term-[^"]+)"', html)
    dts = re.findall(r"<dt\b", html)
    assert len(terms) == len(dts), "a term without an anchor"
    assert len(set(terms)) == len(terms), "two terms share an anchor"
    assert "term-attention" in terms and "term-KV-cache" in terms, terms[:10]


def test_links_to_terms_land_on_a_term(site_dir, glossary):
    linked = 0
    for page in site_dir.rglob("*.html"):
        for href in _parse(page).links:
            match = re.search(r"glossary\.html#(term-[^\"]+)$", href)
            if match:
                linked += 1
                assert match.group(1) in glossary.ids, f"{page.name} links to a missing {href}"
    assert linked >= 10, f"only {linked} links to glossary terms in the whole site"


def test_chapters_link_the_terms_they_define(site_dir):
    chapters = sorted((site_dir / "notebooks").glob("[0-9][0-9]_*.html"))
    without = [
        page.name
        for page in chapters
        if not any("glossary.html#term-" in href for href in _parse(page).links)
    ]
    assert not without, f"chapters that link no glossary term: {without}"
