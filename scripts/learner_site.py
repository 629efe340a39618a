"""Sphinx extension of the course for learners and instructors (loaded by _config.yml).

- After an HTML build, the learner edition (scripts/learner_edition.py) is written into the site:
  it replaces the source notebooks in ``_sources/`` (what each chapter's download button serves)
  and its zip goes to ``learner/learner-notebooks.zip`` (linked from the instructor guide).
- The ``{exercise-list}`` directive writes the table of every exercise (number, title, stars,
  minutes) and the course total, read from the notebooks, so the instructor guide cannot go stale.
- ``{chapter-table}`` writes the table of the chapters (what each builds on, the article's
  questions it answers, its time), ``{chapter-goals}`` their learning goals and
  ``{question-coverage}`` the sentence that says which of the 20 questions the chapters prove:
  all read from each chapter's title cell (scripts/learner_site.py:chapters), the one source.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from posixpath import normpath

import learner_edition as le
import nbformat
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOGGER = logging.getLogger(__name__)
SITE_FOLDER = "learner"  # the zip and the notebooks go to <site>/learner/


def exercise_table(root: Path, language: str = le.SOURCE_LANGUAGE) -> list[str]:
    """MyST Markdown lines of the exercise table of the instructor guide.

    One bold row per chapter (its title and the minutes of its exercises), then one row per
    exercise, and the course total. In a translated edition the titles come from its catalogs
    and the table's own words from the learner edition's (so they are not messages).
    """
    converter = le.Converter(le.load_config(root, language))
    words = converter.config.words
    found = le.exercises(root, converter)
    lines = [words.table_header, "|---|:-:|--:|"]
    for notebook in dict.fromkeys(ex.notebook for ex in found):
        chapter = [ex for ex in found if ex.notebook == notebook]
        docname = f"notebooks/{Path(notebook).stem}"
        number = le.chapter_number(chapter[0].chapter)
        title = f"{{doc}}`{number}. {converter.index.titles[docname]} </{docname}>`"
        lines.append(f"| **{title}** | | **{_minutes(chapter, words)}** |")
        for ex in chapter:
            text = words.table_exercise.format(
                exercise=words.exercise % ex.number, title=ex.plain_title
            )
            link = f"{{ref}}`{text} <{ex.label}>`"
            lines.append(f"| {link} | {'★' * ex.stars} | {_minutes([ex], words)} |")
    total_row = words.table_total.format(count=len(found))
    lines.append(f"| **{total_row}** | | **{_minutes(found, words)}** |")
    by_stars = ", ".join(
        f"{sum(ex.stars == s for ex in found)} {'★' * s}"
        for s in (1, 2, 3)
        if any(ex.stars == s for ex in found)
    )
    total = sum(ex.minutes or 0 for ex in found)
    lines += ["", words.table_summary.format(by_stars=by_stars, hours=total / 60)]
    return lines


def _minutes(exercises: list[le.Exercise], words: le.Words) -> str:
    """Their total minutes, or "not set" where an exercise has no time yet."""
    if any(ex.minutes is None for ex in exercises):
        return words.not_set
    return str(sum(ex.minutes for ex in exercises))


def _language(config) -> str:
    """The build's language as the learner edition names it ("en", "zh_CN")."""
    return (config.language or le.SOURCE_LANGUAGE).replace("-", "_")


# ----------------------------------------------------------------------------- chapter tables

ARTICLE_QUESTIONS = 20
# The chapter tables' own words, per language (a language without an entry uses English).
CHAPTER_WORDS = {
    "en": {
        "chapter": "Chapter",
        "builds-on": "Builds on",
        "questions": "Article questions",
        "time": "Time",
        "minutes": "about {minutes} minutes",
        "nothing": "the course prerequisites",
        "beyond": "beyond the article",
        "in part": "{questions} in part",
        "and": "; ",
        "all": "Each of the article's {total} questions is proven by runnable cells in the "
        "chapters the table names.",
        "some": "Of the article's {total} questions, {count} are proven by runnable cells in the "
        "chapters published so far, named in the table; {missing} {verb} answered on the "
        "{{doc}}`interview question page </book/interview_questions>` and will be proven in a "
        "chapter still in preparation.",
        "is": "is",
        "are": "are",
    },
    "zh_CN": {
        "chapter": "章节",
        "builds-on": "前置章节",
        "questions": "文章题目",
        "time": "时间",
        "minutes": "约 {minutes} 分钟",
        "nothing": "课程先修知识",
        "beyond": "超出文章范围",
        "in part": "{questions}（部分）",
        "and": "；",
        "all": "文章的 {total} 道题，每一道都由表中所列章节里可运行的单元给出证明。",
        "some": "文章的 {total} 道题中，已发布的章节（见下表）用可运行的单元证明了 {count} 道；"
        "{missing} 的答案见{{doc}}`面试题库 </book/interview_questions>`，"
        "其证明将在尚在编写的章节中给出。",
        "is": "",
        "are": "",
    },
}
_DOC_LINK = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`<>]+)>?`")


@dataclass
class Chapter:
    """What a chapter's title cell says about it: the one source of the chapter tables."""

    chapter: str  # "09", from the file name
    docname: str  # "notebooks/09_cost_of_attention"
    title: str  # its H1, in the edition's language
    builds_on: list[str]  # the chapters its Prerequisites paragraph links with {doc}, e.g. ["02"]
    questions: list[int]  # the article's questions its "Interview question(s)" paragraph names
    minutes: int  # "About N minutes" in its Time paragraph
    goals: list[str]  # its learning goals (MyST, one item each), in the edition's language
    partial: list[int] = field(default_factory=list)  # the questions it answers only in part


def _paragraph(source: str, opening: str, where: str) -> str:
    """The paragraph of a title cell that opens with ``**<opening>``."""
    for paragraph in re.split(r"\n\s*\n", source):
        if paragraph.lstrip().startswith(f"**{opening}"):
            return paragraph
    raise le.LearnerEditionError(f"{where}: its title cell has no paragraph opening **{opening}")


def _absolute_docs(text: str, docname: str) -> str:
    """{doc} references made absolute, so that the text works on any page."""

    def fix(match: re.Match) -> str:
        ref = match.group(1)
        if ref.startswith("/"):
            return match.group(0)
        target = normpath(f"{docname.rpartition('/')[0]}/{ref}")
        return match.group(0).replace(ref, f"/{target}")

    return _DOC_LINK.sub(fix, text)


def chapters(root: Path, converter: le.Converter, docnames=None) -> list[Chapter]:
    """Every chapter notebook (or those of ``docnames``), read from its title cell.

    The English source gives the facts (linked prerequisites, question numbers, minutes); the
    edition's language gives the title and the goals.
    """
    found = []
    numbers = {le.chapter_of(path) for path in le.notebook_sources(root)}
    for path in le.notebook_sources(root):
        docname = path.relative_to(root).with_suffix("").as_posix()
        if docnames is not None and docname not in docnames:
            continue
        nb = nbformat.read(path, as_version=4)
        source = next(c.source for c in nb.cells if c.cell_type == "markdown")
        where = path.name
        if not source.lstrip().startswith("# "):
            raise le.LearnerEditionError(f"{where}: the first markdown cell is not its title cell")
        builds_on = []
        for ref in _DOC_LINK.findall(_paragraph(source, "Prerequisites", where)):
            match = re.match(r"(\d+)_", ref.rpartition("/")[2])
            if match and match.group(1) in numbers and match.group(1) not in builds_on:
                builds_on.append(match.group(1))
        minutes = re.search(r"[Aa]bout (\d+) minutes", _paragraph(source, "Time", where))
        if minutes is None:
            raise le.LearnerEditionError(f"{where}: its Time paragraph says no 'About N minutes'")
        answered = _paragraph(source, "Interview question", where)
        questions = sorted({int(q) for q in re.findall(r"\bQ(\d+)\b", answered)})
        # "**Interview questions answered, in part**" or "the ... half of Q10": only in part
        all_partial = "in part" in answered.split("**")[1]
        partial = [
            q for q in questions if all_partial or re.search(rf"(?:half|part) of Q{q}\b", answered)
        ]
        translated = converter.config.translate(docname, source)
        tokens = converter.md.parse(translated, {})
        lines = translated.splitlines()
        start = next((i for i, t in enumerate(tokens) if t.type == "ordered_list_open"), None)
        if start is None:
            raise le.LearnerEditionError(f"{where}: its title cell has no list of learning goals")
        goals = []
        for token in tokens[start:]:
            if token.type == "ordered_list_close" and token.level == tokens[start].level:
                break
            if token.type == "list_item_open" and token.level == tokens[start].level + 1:
                item = " ".join(line.strip() for line in lines[token.map[0] : token.map[1]]).strip()
                goals.append(_absolute_docs(re.sub(r"^\d+[.)]\s*", "", item), docname))
        found.append(
            Chapter(
                chapter=le.chapter_of(path),
                docname=docname,
                title=converter.index.titles[docname],
                builds_on=sorted(builds_on),
                questions=questions,
                minutes=int(minutes.group(1)),
                goals=goals,
                partial=partial,
            )
        )
    return found


def _words(language: str) -> dict[str, str]:
    return CHAPTER_WORDS.get(language, CHAPTER_WORDS[le.SOURCE_LANGUAGE])


def _link(ch: Chapter) -> str:
    return f"{{doc}}`{le.chapter_number(ch.chapter)}. {ch.title} </{ch.docname}>`"


def _questions(ch: Chapter, words: dict[str, str]) -> str:
    """ "Q12; Q10 in part", "Q5, Q7, Q16 in part", or "beyond the article"."""
    full = ", ".join(f"Q{q}" for q in ch.questions if q not in ch.partial)
    part = ", ".join(f"Q{q}" for q in ch.partial)
    part = words["in part"].format(questions=part) if part else ""
    return words["and"].join(x for x in (full, part) if x) or words["beyond"]


def chapter_table(found: list[Chapter], columns: list[str], language: str) -> list[str]:
    """MyST lines of the chapter table: a link to each chapter, then the ``columns`` asked for."""
    words = _words(language)
    unknown = set(columns) - {"builds-on", "questions", "time"}
    if unknown:
        raise le.LearnerEditionError(f"chapter-table: unknown columns {sorted(unknown)}")
    lines = [
        "| " + " | ".join([words["chapter"]] + [words[c] for c in columns]) + " |",
        "|---" * (1 + len(columns)) + "|",
    ]
    for ch in found:
        cells = [_link(ch)]
        for column in columns:
            if column == "builds-on":
                numbers = [le.chapter_number(c) for c in ch.builds_on]
                cells.append(", ".join(numbers) or words["nothing"])
            elif column == "questions":
                cells.append(_questions(ch, words))
            else:
                cells.append(words["minutes"].format(minutes=ch.minutes))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def chapter_goals(found: list[Chapter]) -> list[str]:
    """MyST lines: each chapter's link, then its learning goals as a numbered list."""
    lines = []
    for ch in found:
        lines += [f"**{_link(ch)}**", ""]
        lines += [f"{i}. {goal}" for i, goal in enumerate(ch.goals, 1)] + [""]
    return lines


def question_coverage(found: list[Chapter], language: str) -> list[str]:
    """One sentence: how many of the article's questions the chapters prove, and which not yet."""
    words = _words(language)
    covered = {q for ch in found for q in ch.questions if q not in ch.partial}
    missing = [q for q in range(1, ARTICLE_QUESTIONS + 1) if q not in covered]
    if not missing:
        return [words["all"].format(total=ARTICLE_QUESTIONS)]
    return [
        words["some"].format(
            total=ARTICLE_QUESTIONS,
            count=ARTICLE_QUESTIONS - len(missing),
            missing=", ".join(f"Q{q}" for q in missing),
            verb=words["is"] if len(missing) == 1 else words["are"],
        )
    ]


class _ChapterDirective(SphinxDirective):
    """Common part of the chapter directives: read the chapters the site builds."""

    has_content = False

    def chapters(self) -> list[Chapter]:
        root = Path(self.env.srcdir)
        for path in le.notebook_sources(root):
            self.env.note_dependency(str(path))  # a changed title cell rebuilds the page
        language = _language(self.config)
        converter = le.Converter(le.load_config(root, language))
        return chapters(root, converter, docnames=self.env.found_docs)

    def render(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.name), 0, container)
        return container.children

    def guarded(self, make) -> list[nodes.Node]:
        try:
            return self.render(make(self.chapters()))
        except le.LearnerEditionError as err:
            raise self.error(f"{self.name}: {err}") from None


class ChapterTable(_ChapterDirective):
    """``{chapter-table}`` with ``:columns: builds-on, questions, time`` (any of them)."""

    option_spec = {"columns": lambda text: [c.strip() for c in text.split(",") if c.strip()]}

    def run(self) -> list[nodes.Node]:
        columns = self.options.get("columns", ["questions"])
        language = _language(self.config)
        return self.guarded(lambda found: chapter_table(found, columns, language))


class ChapterGoals(_ChapterDirective):
    """``{chapter-goals}``: every chapter's learning goals."""

    def run(self) -> list[nodes.Node]:
        return self.guarded(chapter_goals)


class QuestionCoverage(_ChapterDirective):
    """``{question-coverage}``: which of the article's questions the chapters prove."""

    def run(self) -> list[nodes.Node]:
        language = _language(self.config)
        return self.guarded(lambda found: question_coverage(found, language))


class ExerciseList(SphinxDirective):
    """``{exercise-list}``: the table of the course's exercises, from the notebooks."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir)
        for path in le.notebook_sources(root):
            self.env.note_dependency(str(path))  # a changed notebook rebuilds the table
        try:
            lines = exercise_table(root, _language(self.config))
        except le.LearnerEditionError as err:
            raise self.error(f"exercise-list: {err}") from None
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="exercise-list"), 0, container)
        return container.children


def write_learner_edition(app: Sphinx, exception: Exception | None) -> None:
    """Put the learner edition in the built site: _sources/ and learner/."""
    if exception is not None or app.builder.format != "html":
        return
    root, out = Path(app.srcdir), Path(app.outdir)
    written = le.build(root, out / SITE_FOLDER, quiet=True, language=_language(app.config))
    replaced = 0
    for path in written:
        source = out / "_sources" / "notebooks" / path.name
        if source.is_file():  # the page exists: its download button serves the learner edition
            shutil.copyfile(path, source)
            replaced += 1
    LOGGER.info(
        f"learner edition: {len(written)} notebooks in {SITE_FOLDER}/ and "
        f"{SITE_FOLDER}/{le.ZIP_NAME}; {replaced} download buttons serve it"
    )


def setup(app: Sphinx) -> dict:
    app.add_directive("exercise-list", ExerciseList)
    app.add_directive("chapter-table", ChapterTable)
    app.add_directive("chapter-goals", ChapterGoals)
    app.add_directive("question-coverage", QuestionCoverage)
    app.connect("build-finished", write_learner_edition)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
