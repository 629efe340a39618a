"""The student edition (make student) drops every solution and nothing else."""

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "student_edition", ROOT / "scripts/student_edition.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


student_edition = _load_script()


def _nb(*sources):
    cells = [new_markdown_cell(s) if s.startswith("```") else new_code_cell(s) for s in sources]
    return new_notebook(cells=cells)


def test_strip_solutions_removes_the_gated_cells_inclusive():
    nb = _nb(
        "```{exercise-start}\n:label: ex\n```",
        "stub()",
        "```{exercise-end}\n```",
        "```{solution-start} ex\n:class: dropdown\n```",
        "answer()",
        "```{solution-end}\n```",
        "after()",
    )
    stripped, removed = student_edition.strip_solutions(nb)
    assert removed == 1
    assert [c.source.splitlines()[0] for c in stripped.cells] == [
        "```{exercise-start}",
        "stub()",
        "```{exercise-end}",
        "after()",
    ]


@pytest.mark.parametrize(
    "sources, problem",
    [
        (("```{solution-start} ex\n```", "answer()"), "never closed"),
        (("```{solution-end}\n```",), "closes no solution"),
        (("```{solution-start} a\n```", "```{solution-start} b\n```"), "before the previous"),
    ],
)
def test_strip_solutions_rejects_unbalanced_markers(sources, problem):
    with pytest.raises(ValueError, match=problem):
        student_edition.strip_solutions(_nb(*sources))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_student_edition_of_each_notebook_has_no_solution_left(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    stripped, removed = student_edition.strip_solutions(nbformat.read(path, as_version=4))
    exercises = sum("{exercise-start}" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert removed == exercises
    assert not any("{solution" in c.source for c in stripped.cells)
    assert sum("{exercise-start}" in c.source for c in stripped.cells) == exercises


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_solution_markers_share_no_cell_with_exercise_markers(path):
    """Stripping a solution must not take an exercise's start or end with it."""
    for cell in nbformat.read(path, as_version=4).cells:
        if "{solution-start}" in cell.source or "{solution-end}" in cell.source:
            assert "{exercise-" not in cell.source, cell.source
