"""Search finds English and Chinese words (html_search_language: zh, segmented with jieba).

The search index is checked directly (which pages each word is indexed for), then the search page
is used as a reader would: the query in the address, the results listed by Sphinx's script.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, urljoin

import pytest

# (query, pages that must be among its results)
QUERIES = [
    ("RoPE", ["notebooks/05_position_information"]),
    ("掩码", ["notebooks/03_masks", "book/interview_questions"]),
    ("softmax", ["notebooks/02_self_attention"]),
    ("注意力", ["book/glossary", "book/interview_questions"]),
]


@pytest.fixture(scope="module")
def search_index(site_dir):
    text = (site_dir / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1 : text.rindex(")")])


def _indexed_pages(index: dict, word: str) -> set[str]:
    """Pages whose text or titles contain ``word`` as an indexed term (lower-cased, as Sphinx)."""
    pages: set[int] = set()
    for table in ("terms", "titleterms"):
        hits = index[table].get(word.lower(), [])
        pages.update([hits] if isinstance(hits, int) else hits)
    return {index["docnames"][i] for i in pages}


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_search_index_holds_the_word(search_index, query, expected):
    found = _indexed_pages(search_index, query)
    missing = [page for page in expected if page not in found]
    assert not missing, f"{query!r} is not indexed for {missing}; it is for {sorted(found)}"


def test_chinese_text_is_split_into_words(search_index):
    chinese = [t for t in search_index["terms"] if re.search(r"[\u4e00-\u9fff]", t)]
    assert "掩码" in search_index["terms"] or "掩码" in search_index["titleterms"]
    assert len(chinese) > 50, f"only {len(chinese)} Chinese words indexed"
    assert max(map(len, chinese)) < 20, "whole Chinese sentences indexed as one word"


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_search_page_lists_the_pages(browser, base_url, query, expected):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(urljoin(base_url, f"search.html?q={quote(query)}"), wait_until="load")
        page.wait_for_function(
            "() => document.querySelector('#search-results')"
            " && /found|did not match|找到/i.test(document.querySelector('#search-results')"
            ".textContent)",
            timeout=20_000,
        )
        links = page.eval_on_selector_all(
            "#search-results ul.search li > a", "els => els.map((a) => a.getAttribute('href'))"
        )
        pages = {re.sub(r"\.html.*$", "", href) for href in links}
        missing = [p for p in expected if p not in pages]
        assert not missing, f"searching {query!r} does not list {missing}; it lists {sorted(pages)}"
    finally:
        context.close()
