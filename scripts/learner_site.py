"""Sphinx extension of the course for learners and instructors (loaded by _config.yml).

- After an HTML build, the learner edition (scripts/learner_edition.py) is written into the site:
  it replaces the source notebooks in ``_sources/`` (what each chapter's download button serves)
  and its zip goes to ``learner/learner-notebooks.zip`` (linked from the instructor guide).
- The ``{exercise-list}`` directive writes the table of every exercise (number, title, stars,
  minutes) and the course total, read from the notebooks, so the instructor guide cannot go stale.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import learner_edition as le
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
    app.connect("build-finished", write_learner_edition)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
