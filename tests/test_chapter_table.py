"""The chapter tables of the book pages are generated from each chapter's title cell.

book/intro.md and book/instructors.md use the ``{chapter-table}``, ``{chapter-goals}`` and
``{question-coverage}`` directives of scripts/learner_site.py, which read every chapter's title
cell (its learning goals, the chapters its Prerequisites paragraph links, its time and the
article's questions it answers) at each site build, so the pages cannot go stale. These tests
check that every chapter's title cell gives what the tables need, and that the pages use them.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from tests.toc import ROOT, toc_pages


def _load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


le = _load("learner_edition")
ls = _load("learner_site")
CHAPTER_DOCS = [stem for stem, is_notebook in toc_pages() if is_notebook]


@pytest.fixture(scope="module")
def found():
    converter = le.Converter(le.load_config(ROOT))
    return ls.chapters(ROOT, converter, docnames=set(CHAPTER_DOCS))


def test_every_chapter_of_the_toc_has_a_row(found):
    assert [ch.docname for ch in found] == sorted(CHAPTER_DOCS)
    lines = ls.chapter_table(found, ["builds-on", "questions", "time"], "en")
    assert len(lines) == 2 + len(found)
    for ch, row in zip(found, lines[2:], strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, row
        assert f"</{ch.docname}>" in cells[0]
        assert cells[3] == f"about {ch.minutes} minutes"


def test_title_cells_give_goals_time_and_questions(found):
    for ch in found:
        assert 2 <= len(ch.goals) <= 4, f"{ch.docname}: {len(ch.goals)} learning goals (2-4)"
        assert all(goal and not goal.startswith(("1.", "-")) for goal in ch.goals), ch.goals
        assert 10 <= ch.minutes <= 120, f"{ch.docname}: {ch.minutes} minutes"
        assert all(1 <= q <= ls.ARTICLE_QUESTIONS for q in ch.questions), ch.questions


def test_a_chapter_builds_only_on_earlier_chapters(found):
    for ch in found:
        assert all(int(b) < int(ch.chapter) for b in ch.builds_on), (ch.docname, ch.builds_on)


def test_chapter_09_and_10_rows(found):
    rows = {ch.chapter: ch for ch in found}
    assert rows["09"].questions == [3]  # Q7's cost part is chapter 14's
    assert rows["09"].builds_on == ["02", "04"]
    assert rows["10"].questions == [4]
    assert "09" not in rows["10"].builds_on  # it points to 09 but does not build on it


def test_goals_link_pages_from_anywhere():
    text = "as in {doc}`02_self_attention` and {doc}`the notation <../book/notation>`"
    assert ls._absolute_docs(text, "notebooks/05_position_information") == (
        "as in {doc}`/notebooks/02_self_attention` and {doc}`the notation </book/notation>`"
    )


def test_coverage_sentence_names_what_is_not_proven_yet():
    def chapter(questions):
        return ls.Chapter("02", "notebooks/02_x", "X", [], questions, 30, ["a", "b"])

    some = ls.question_coverage([chapter(list(range(1, 19)))], "en")[0]
    assert "18 are proven" in some and "Q19, Q20 are answered" in some
    one = ls.question_coverage([chapter(list(range(1, 20)))], "en")[0]
    assert "Q20 is answered" in one
    every = ls.question_coverage([chapter(list(range(1, 21)))], "en")[0]
    assert every.startswith("Each of the article's 20 questions is proven")


def test_a_title_cell_without_a_time_is_refused():
    with pytest.raises(le.LearnerEditionError, match=r"nb\.ipynb: .*\*\*Time"):
        ls._paragraph("# Title\n\n**Prerequisites.** none.", "Time", "nb.ipynb")


def test_every_language_has_every_word():
    assert set(ls.CHAPTER_WORDS["zh_CN"]) == set(ls.CHAPTER_WORDS["en"])


def test_book_pages_use_the_generated_tables_not_hand_written_ones():
    hand_row = re.compile(r"^\| *0?\d+ .*\{doc\}`\.\./notebooks/", re.M)
    for page, directives in {
        "intro": ["chapter-table", "question-coverage"],
        "instructors": ["chapter-table", "chapter-goals"],
    }.items():
        text = (ROOT / "book" / f"{page}.md").read_text(encoding="utf-8")
        for directive in directives:
            assert f"```{{{directive}}}" in text, f"book/{page}.md: no {{{directive}}}"
        assert not hand_row.search(text), f"book/{page}.md: a hand-written chapter row"
