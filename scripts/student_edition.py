"""Write a student edition of the notebooks: the same files with every solution removed.

A solution is the run of cells from the markdown cell that opens it (``{solution-start}``) to
the one that closes it (``{solution-end}``), both included. The remaining cells keep their
outputs, so the student sees the chapter as published, minus the solutions.

Usage: python scripts/student_edition.py notebooks/ _build/student/
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def strip_solutions(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Return the notebook without its solution cells, and how many solutions were removed."""
    kept, inside, removed = [], False, 0
    for cell in nb.cells:
        text = cell.source if cell.cell_type == "markdown" else ""
        if "{solution-start}" in text:
            if inside:
                raise ValueError("a {solution-start} opens before the previous one is closed")
            inside, removed = True, removed + 1
        if not inside:
            kept.append(cell)
        if "{solution-end}" in text:
            if not inside:
                raise ValueError("a {solution-end} closes no solution")
            inside = False
    if inside:
        raise ValueError("a {solution-start} is never closed by {solution-end}")
    nb.cells = kept
    return nb, removed


def main(src: str, dst: str) -> None:
    notebooks = sorted(Path(src).glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no notebooks in {src}")
    Path(dst).mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        nb, removed = strip_solutions(nbformat.read(path, as_version=4))
        nbformat.write(nb, Path(dst) / path.name)
        print(f"{path.name}: {removed} solution(s) removed")
    print(f"student edition written to {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
