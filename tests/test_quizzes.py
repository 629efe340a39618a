"""Self-check quizzes: the last section of a chapter, 3-5 questions with collapsed answers.

The format is in the course conventions: one markdown cell per question under
`## Self-check quiz`, options `- **A.** ...`, the answer in `:::{dropdown} Answer`, and every
number an answer takes from the chapter's output listed in the cell's metadata
(`"quiz": {"numbers": [...]}`), so that a re-executed notebook cannot leave the quiz behind.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

# The chapters that must have a quiz. Chapter helpers: add yours here when you write it.
# (When every chapter has one, this becomes every notebook.)
CHAPTERS_WITH_QUIZ = set("01 02 03 04 05 06 07 08 09 10 11 12 13 14".split())

QUIZ_HEADING = "## Self-check quiz"


def _load_converter():
    spec = importlib.util.spec_from_file_location(
        "learner_edition", ROOT / "scripts" / "learner_edition.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("learner_edition", module)
    spec.loader.exec_module(module)
    return module


le = _load_converter()
MD = le.make_parser(le.load_config(ROOT).myst)


def _quiz_cells(nb) -> list | None:
    """The markdown cells after the `## Self-check quiz` heading cell, or None without a quiz."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and any(
            line.strip() == QUIZ_HEADING for line in cell.source.splitlines()
        ):
            return nb.cells[i + 1 :]
    return None


def _outputs_text(nb) -> str:
    """Every text a code cell of the notebook shows: streams, results, errors."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
                value = out.get("data", {}).get(mime, "")
                parts.append(value if isinstance(value, str) else "".join(value))
            if out.get("output_type") == "error":
                parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "\n".join(parts)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS_WITH_QUIZ))
def test_chapter_ends_with_a_self_check_quiz(chapter):
    (path,) = [p for p in NOTEBOOKS if p.name.startswith(f"{chapter}_")]
    nb = nbformat.read(path, as_version=4)
    cells = _quiz_cells(nb)
    assert cells is not None, f"{path.name} has no '{QUIZ_HEADING}' section"
    assert all(c.cell_type == "markdown" for c in cells), "the quiz is the last section"
    questions = [c for c in cells if c.source.lstrip().startswith("**Question")]
    assert 3 <= len(questions) <= 5, f"{len(questions)} questions; a quiz has 3 to 5"
    assert len(questions) == len(cells), "each cell after the heading is one question"
    for n, cell in enumerate(questions, start=1):
        assert cell.source.startswith(f"**Question {n}.**"), cell.source[:60]
        options = re.findall(r"^- \*\*([A-E])\.\*\*", cell.source, re.M)
        assert len(options) >= 3 and options == sorted(options), f"Question {n}: options {options}"
        dropdowns = [
            t
            for t in MD.parse(cell.source, {})
            if t.type == "colon_fence" and t.info.strip().startswith("{dropdown}")
        ]
        assert len(dropdowns) == 1, f"Question {n}: one answer dropdown, found {len(dropdowns)}"
        assert dropdowns[0].info.strip() == "{dropdown} Answer", dropdowns[0].info
        answer = re.match(r"\*\*([A-E])\.\*\*", dropdowns[0].content.strip())
        assert answer and answer.group(1) in options, f"Question {n}: the answer names no option"
        assert cell.source.rstrip().endswith(":::"), f"Question {n}: the answer comes last"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_quiz_numbers_appear_in_the_chapter_outputs(path):
    """A number an answer quotes from the chapter is printed, verbatim, by one of its cells."""
    nb = nbformat.read(path, as_version=4)
    outputs = _outputs_text(nb)
    for cell in nb.cells:
        numbers = cell.metadata.get("quiz", {}).get("numbers", [])
        for number in numbers:
            assert number in cell.source, f"{number!r} is listed but not stated in the question"
            assert number in outputs, f"{number!r} (quiz) is printed by no cell of {path.name}"


@pytest.mark.parametrize("chapter", sorted(CHAPTERS_WITH_QUIZ))
def test_quiz_answers_are_collapsed_details_in_the_learner_edition(chapter):
    (path,) = [p for p in NOTEBOOKS if p.name.startswith(f"{chapter}_")]
    learner, _ = le.Converter(le.load_config(ROOT)).notebook(path)
    cells = _quiz_cells(learner)
    assert cells, "the quiz is missing from the learner edition"
    for cell in cells:
        assert cell.source.count("<details>\n<summary>Answer</summary>") == 1, cell.source[-300:]
        assert "<details open" not in cell.source
        assert "{dropdown}" not in cell.source and ":::" not in cell.source
