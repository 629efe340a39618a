"""The learner edition (make learner): plain Jupyter Markdown, no solutions, links that work.

The learner edition is what Colab, JupyterLab, VS Code and a downloaded .ipynb show. It is built
from the source notebooks by scripts/learner_edition.py; these tests read what it wrote.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

# MyST that Jupyter front ends would print as raw text.
MYST_PATTERNS = [
    "{exercise",
    "{solution",
    "{admonition",
    ":::",
    "{ref}",
    "{doc}",
    "{cite",
    "{numref}",
    "{eq}",
    "{term}",
    "{dropdown}",
    "```{",
]
LABEL_LINE = re.compile(r"^\s*\([\w.:-]+\)=\s*$", re.M)  # a MyST target: (sec-02-x)=


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


le = _load("learner_edition")


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> dict[str, nbformat.NotebookNode]:
    """Build the learner edition once: {stem: learner notebook}."""
    out = tmp_path_factory.mktemp("learner")
    written = le.build(ROOT, out, quiet=True)
    assert (out / le.ZIP_NAME).is_file()
    return {p.stem: nbformat.read(p, as_version=4) for p in written} | {"_out": out}


def _source(stem: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)


def _regions(nb) -> tuple[set[str], set[str]]:
    """(ids of the cells inside solutions, ids of the cells inside exercises) of a source notebook.

    Found from the markers, independently of the converter: each marker sits in its own cell.
    """
    solution, exercise, in_solution, in_exercise = set(), set(), False, False
    for cell in nb.cells:
        text = cell.source if cell.cell_type == "markdown" else ""
        in_solution |= "{solution-start}" in text
        in_exercise |= "{exercise-start}" in text
        if in_solution:
            solution.add(cell.id)
        elif in_exercise and cell.cell_type == "code":
            exercise.add(cell.id)
        in_solution &= "{solution-end}" not in text
        in_exercise &= "{exercise-end}" not in text
    return solution, exercise


def _markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


# ----------------------------------------------------------------------------- every chapter


def test_learner_edition_has_every_chapter_and_zips_them(edition):
    assert sorted(k for k in edition if k != "_out") == IDS
    with zipfile.ZipFile(edition["_out"] / le.ZIP_NAME) as archive:
        names = sorted(archive.namelist())
        assert names == [f"{le.ZIP_FOLDER}/{stem}.ipynb" for stem in IDS]
        for name in names:
            nbformat.validate(nbformat.reads(archive.read(name).decode(), as_version=4))


@pytest.mark.parametrize("stem", IDS)
def test_learner_notebook_has_no_myst_syntax_left(edition, stem):
    for text in _markdown(edition[stem]):
        for pattern in MYST_PATTERNS:
            assert pattern not in text, f"{pattern!r} left in a markdown cell:\n{text[:300]}"
        assert not LABEL_LINE.search(text), f"a (label)= target left in:\n{text[:300]}"


@pytest.mark.parametrize("stem", IDS)
def test_learner_notebook_leaks_no_solution(edition, stem):
    """No solution cell, and no line of solution code that is not also elsewhere in the chapter."""
    source = _source(stem)
    solution_ids, _ = _regions(source)
    assert solution_ids, f"{stem} has no solution to remove"
    learner = edition[stem]
    assert not solution_ids & {c.id for c in learner.cells}
    elsewhere = {
        line.strip()
        for c in source.cells
        if c.id not in solution_ids
        for line in c.source.splitlines()
    }
    learner_lines = {line.strip() for c in learner.cells for line in c.source.splitlines()}
    for cell in source.cells:
        if cell.id in solution_ids and cell.cell_type == "code":
            for line in cell.source.splitlines():
                if line.strip() and line.strip() not in elsewhere:
                    assert line.strip() not in learner_lines, f"solution line leaked: {line!r}"


@pytest.mark.parametrize("stem", IDS)
def test_every_exercise_is_a_numbered_heading_with_its_title(edition, stem):
    titles = re.findall(r"```\{exercise-start\}\s*(.*)", "\n".join(_markdown(_source(stem))))
    assert titles, f"{stem} has no exercise"
    chapter = int(stem[:2])
    headings = [
        line
        for text in _markdown(edition[stem])
        for line in text.splitlines()
        if line.startswith("#")
    ]
    for n, title in enumerate(titles, start=1):
        assert f"### Exercise {chapter}.{n} {title.strip()}" in headings, headings


@pytest.mark.parametrize("stem", IDS)
def test_exercise_cells_have_no_outputs_and_the_others_keep_theirs(edition, stem):
    source = _source(stem)
    _, exercise_ids = _regions(source)
    learner = {c.id: c for c in edition[stem].cells}
    assert exercise_ids <= set(learner), "an exercise cell (stub or checker call) was dropped"
    for cell in source.cells:
        if cell.cell_type != "code" or cell.id not in learner:
            continue
        if cell.id in exercise_ids:
            assert learner[cell.id].outputs == [], f"exercise cell {cell.id} keeps its output"
            assert learner[cell.id].execution_count is None
        else:
            assert learner[cell.id].outputs == cell.outputs, f"cell {cell.id} lost its outputs"


@pytest.mark.parametrize("stem", IDS)
def test_colab_cell_is_kept_first(edition, stem):
    first_code = next(c for c in edition[stem].cells if c.cell_type == "code")
    assert '"google.colab" in sys.modules' in first_code.source


@pytest.mark.parametrize("stem", IDS)
def test_every_link_is_absolute_or_a_sibling_notebook(edition, stem):
    md = MarkdownIt("commonmark")
    base = le.load_config(ROOT).base_url
    for text in _markdown(edition[stem]):
        hrefs = [
            child.attrs.get("href") or child.attrs.get("src")
            for token in md.parse(text)
            if token.children
            for child in token.children
            if child.type in ("link_open", "image")
        ]
        hrefs += re.findall(r"""<a\s[^>]*href=["']([^"']+)""", text)
        for href in hrefs:
            sibling = re.fullmatch(r"(\d\d_[\w-]+\.ipynb)(#[\w-]*)?", href)
            if sibling:
                assert sibling.group(1) in {f"{s}.ipynb" for s in IDS}, href
            else:
                assert re.match(r"https?://", href), f"relative link {href!r} in {stem}"
                if href.startswith(base):  # a page of the course website
                    page = href[len(base) :].split("#")[0]
                    assert re.fullmatch(r"(book|notebooks)/[\w-]+\.html", page), href
                    assert (ROOT / page).with_suffix(".md").is_file() or (ROOT / page).with_suffix(
                        ".ipynb"
                    ).is_file(), f"{href} is no page of the book"


@pytest.mark.parametrize("stem", IDS)
def test_interview_boxes_keep_their_titles(edition, stem):
    titles = re.findall(
        r":::\{admonition\} (Interview question [^\n]*)", "\n".join(_markdown(_source(stem)))
    )
    learner = "\n".join(_markdown(edition[stem]))
    for title in titles:
        assert f"> **{title.strip()}**" in learner, f"the box {title!r} lost its title"


@pytest.mark.parametrize("stem", IDS)
def test_figures_keep_their_captions(edition, stem):
    captions = [
        c.metadata["mystnb"]["figure"]["caption"]
        for c in _source(stem).cells
        if c.metadata.get("mystnb", {}).get("figure", {}).get("caption") and c.get("outputs")
    ]
    learner = "\n".join(_markdown(edition[stem]))
    chapter = int(stem[:2])
    for n, _ in enumerate(captions, start=1):
        assert f"**Fig. {chapter}.{n}.**" in learner


def test_every_exercise_declares_its_minutes():
    """The instructor guide's table sums these: each {exercise-start} cell has a time."""
    missing = [
        f"{ex.notebook} Exercise {ex.number}" for ex in le.exercises(ROOT) if ex.minutes is None
    ]
    assert not missing, (
        'add {"exercise": {"minutes": N}} to the metadata of the {exercise-start} cell of: '
        + ", ".join(missing)
    )


# ----------------------------------------------------------------------------- the converter


@pytest.fixture(scope="module")
def convert():
    """convert(*cells) -> learner cells of a notebook 02_x.ipynb made of those cells."""
    converter = le.Converter(le.load_config(ROOT))

    def run(*sources, tmp=ROOT / "notebooks" / "02_probe.ipynb"):
        cells = [
            new_code_cell(s[5:]) if s.startswith("code:") else new_markdown_cell(s) for s in sources
        ]
        nb = new_notebook(cells=cells)
        state = le.NotebookState(path=tmp, docname="notebooks/02_probe")
        out = []
        for cell in nb.cells:
            state.cell = cell
            if cell.cell_type == "markdown":
                out.append(converter.markdown(cell.source, state))
            elif not state.in_solution:
                out.append(cell.source)
        if state.in_solution:
            raise le.LearnerEditionError("a {solution-start} is never closed")
        return out

    return run


def test_gated_solution_is_removed_with_its_cells(convert):
    out = convert(
        "```{exercise-start} ★★ Title\n:label: ex-02-sdpa\n```\nTask.",
        "code:stub()",
        "```{exercise-end}\n```",
        "```{solution-start} ex-02-sdpa\n:class: dropdown\n```\nThe hint.",
        "code:answer()",
        "```{solution-end}\n```\nAfter the solution.",
        "code:after()",
    )
    assert out == [
        "### Exercise 2.1 ★★ Title\n\nTask.",
        "stub()",
        "",
        "",
        "After the solution.",
        "after()",
    ]


@pytest.mark.parametrize(
    "sources, problem",
    [
        (("```{solution-start} ex\n```", "code:answer()"), "never closed"),
        (("```{solution-end}\n```",), "closes no solution"),
        (("```{solution-start} a\n```", "```{solution-start} b\n```"), "before the previous"),
    ],
)
def test_unbalanced_solution_markers_are_refused(convert, sources, problem):
    with pytest.raises(le.LearnerEditionError, match=problem):
        convert(*sources)


def test_dropdown_becomes_a_collapsed_details_with_converted_body(convert):
    (out,) = convert(":::{dropdown} Answer\n**B.** See {ref}`the softmax <sec-02-softmax>`.\n:::")
    assert out.startswith(
        "<details>\n<summary>Answer</summary>\n\n**B.** See [the softmax](https://"
    )
    assert "02_self_attention.html#sec-02-softmax)" in out
    assert out.endswith("</details>")


def test_admonition_becomes_a_block_quote_with_its_title(convert):
    (out,) = convert(
        ":::{admonition} Interview question Q1 · 标题\n:class: important\n\nBody $x$.\n:::"
    )
    assert out == "> **Interview question Q1 · 标题**\n>\n> Body $x$."


def test_labels_go_and_roles_become_website_links(convert):
    (out,) = convert(
        "(sec-x)=\n## Title\n\nSee {doc}`../book/notation` and {cite}`vaswani2017attention`."
    )
    base = le.load_config(ROOT).base_url
    assert out.startswith("## Title\n\nSee [")
    assert f"]({base}book/notation.html)" in out
    assert f"[Vaswani et al., 2017]({base}book/references.html#cite-vaswani2017attention)" in out


def test_math_macros_are_expanded_and_code_is_left_alone(convert):
    (out,) = convert("$\\softmax(x)$ and `{ref}` in code, $$\\softmax_j$$")
    assert out == "$\\operatorname{softmax}(x)$ and `{ref}` in code, $$\\operatorname{softmax}_j$$"


@pytest.mark.parametrize(
    "source, problem",
    [
        ("```{tab-set}\n```", "no learner-edition form"),
        ("{ref}`no-such-label`", "unknown label"),
        ("{doc}`no/such/page`", "unknown page"),
        ("{cite}`no_such_key`", "unknown key"),
        (":::{note}\n$$\nx\n$$\n:::", "display math"),
        ("- item\n\n  :::{note}\n  x\n  :::", "inside a list"),
    ],
)
def test_what_cannot_be_converted_stops_the_build(convert, source, problem):
    with pytest.raises(le.LearnerEditionError, match=problem):
        convert(source)


def test_solution_markers_share_no_cell_with_exercise_markers():
    """A solution's cells are removed whole: they must not carry an exercise's start or end."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if "{solution-start}" in cell.source or "{solution-end}" in cell.source:
                assert "{exercise-" not in cell.source, f"{path.name}: {cell.source[:80]}"


def test_glossary_anchors_keep_the_case_sphinx_keeps():
    from scripts.learner_edition import _glossary_anchors

    body = ":sorted:\n\nKV cache\nKV 缓存\n  The cached keys.\n\nencoder–decoder attention\n  x\n"
    assert _glossary_anchors(body) == {
        "kv cache": "term-KV-cache",
        "kv 缓存": "term-KV",  # Sphinx drops what it cannot spell in ASCII
        "encoder–decoder attention": "term-encoderdecoder-attention",
    }
