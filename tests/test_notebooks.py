"""The committed notebooks: executed top to bottom, built by the book, shaped like a chapter.

nbval re-executes the notebooks and compares their outputs; these tests check what nbval cannot
see (a stripped or half-run notebook passes nbval) and the structure STYLE.md asks of a chapter.
Notebooks are found by glob, never from a hand-kept list.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import nbformat
import pytest
import yaml

from .toc import toc_entries

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOURCE_SUFFIXES = (".md", ".ipynb")

notebook_params = [pytest.param(path, id=path.name) for path in NOTEBOOKS] or [
    pytest.param(None, id="none", marks=pytest.mark.skip(reason="no notebooks/*.ipynb yet"))
]
each_notebook = pytest.mark.parametrize("path", notebook_params)


@cache
def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def markdown_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "markdown"]


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def describe(nb, cell) -> str:
    """Name a cell for a failure message: its index and first line."""
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else "(empty)"
    return f"cell {nb.cells.index(cell)} ({first[:60]!r})"


def load_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def sources_of(entry: str) -> list[Path]:
    """The source files a toc entry can mean: the path itself or with a source suffix."""
    path = ROOT / entry
    if path.suffix in SOURCE_SUFFIXES:
        return [path] if path.is_file() else []
    return [
        path.with_name(path.name + s) for s in SOURCE_SUFFIXES if (ROOT / (entry + s)).is_file()
    ]


# ----------------------------------------------------------------------------- executed


@each_notebook
def test_notebook_is_stored_executed_top_to_bottom(path):
    nb = read_notebook(path)
    cells = code_cells(nb)
    assert cells, f"{path.name} has no code cell"
    counts = [cell.execution_count for cell in cells]
    expected = list(range(1, len(cells) + 1))
    bad = [describe(nb, c) for c, n, e in zip(cells, counts, expected, strict=True) if n != e]
    assert counts == expected, (
        f"{path.name}: execution counts {counts} are not 1..{len(cells)}; first wrong at "
        f"{bad[0]}. Re-run it top to bottom: make notebooks"
    )


@each_notebook
def test_notebook_has_no_error_output_outside_raises_exception_cells(path):
    nb = read_notebook(path)
    for cell in code_cells(nb):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "raises-exception" in tags(cell):
            assert errors, f"{describe(nb, cell)} is tagged raises-exception but raised nothing"
        else:
            assert not errors, (
                f"{describe(nb, cell)} stores an error "
                f"({errors[0].ename}: {errors[0].evalue}) but is not tagged raises-exception"
            )


MACHINE_PATHS = re.compile(r"/home/|/root/|/Users/|/work/|/tmp/|site-packages|[A-Z]:\\")


def output_texts(cell) -> list[str]:
    """The text a reader sees of each output: streams, errors (traceback too) and text/plain."""
    texts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            texts.append(out.text)
        elif out.output_type == "error":
            texts.append("\n".join([out.evalue, *out.traceback]))
        else:
            texts.append(out.get("data", {}).get("text/plain", ""))
    return texts


def python_source(cell) -> str:
    """The cell's code as Python (IPython magics turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell.source)


@each_notebook
def test_notebook_outputs_show_no_machine_path(path):
    nb = read_notebook(path)
    for cell in code_cells(nb):
        for text in output_texts(cell):
            found = MACHINE_PATHS.search(text)
            assert not found, (
                f"{describe(nb, cell)} shows a path of the machine that ran it "
                f"({found.group(0)!r} in {text[max(0, found.start() - 60) : found.end() + 60]!r})"
            )


@each_notebook
def test_notebook_demonstrates_errors_with_expect_error_not_a_silent_try(path):
    """A try/except with no re-raise and no else passes whether or not the error happens."""
    nb = read_notebook(path)
    for cell in code_cells(nb):
        for node in ast.walk(ast.parse(python_source(cell))):
            if not isinstance(node, ast.Try) or node.orelse:
                continue
            for handler in node.handlers:
                assert any(isinstance(n, ast.Raise) for n in ast.walk(handler)), (
                    f"{describe(nb, cell)}: the try at line {node.lineno} swallows an error; "
                    "demonstrate it with `with attention.expect_error(...)`"
                )


@each_notebook
def test_notebook_raises_exception_only_in_exercise_checker_calls(path):
    """Error demonstrations use expect_error; only a stub's checker call fails on purpose."""
    nb = read_notebook(path)
    for cell in code_cells(nb):
        if "raises-exception" not in tags(cell):
            continue
        body = ast.parse(python_source(cell)).body
        call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Expr) else None
        assert isinstance(call, ast.Call) and re.fullmatch(
            r"attention\.checks\.check_\w+", ast.unparse(call.func)
        ), f"{describe(nb, cell)} is tagged raises-exception but is not one checker call"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert [e.ename for e in errors] == ["CheckFailed"], (
            f"{describe(nb, cell)} must fail with CheckFailed, got {[e.ename for e in errors]}"
        )
        assert errors[0].traceback == errors[0].evalue.splitlines(), (
            f"{describe(nb, cell)} stores a traceback, not the diagnosis alone"
        )


# ----------------------------------------------------------------------------- structure


@each_notebook
def test_notebook_first_cell_is_markdown_h1_title(path):
    first = read_notebook(path).cells[0]
    assert first.cell_type == "markdown", "the first cell must be the title (markdown)"
    assert re.match(r"# \S", first.source.lstrip()), "the first cell must open with an H1 title"


@each_notebook
def test_notebook_colab_cell_installs_package_from_config_repository(path):
    nb = read_notebook(path)
    repo_url = load_yaml("_config.yml")["repository"]["url"].rstrip("/")
    first_code = code_cells(nb)[0]
    assert "remove-cell" in tags(first_code), (
        f"the first code cell must be the Colab cell (remove-cell), not {describe(nb, first_code)}"
    )
    lines = first_code.source.splitlines()
    guard = [
        i
        for i, line in enumerate(lines)
        if re.search(r"""["']google\.colab["']\s+in\s+sys\.modules""", line)
    ]
    assert guard, 'the Colab cell must be guarded by `if "google.colab" in sys.modules:`'
    assert re.search(r"^import sys\b|^import .*\bsys\b", first_code.source, re.M), "import sys"
    installs = [i for i, line in enumerate(lines) if "pip install" in line]
    assert installs, "the Colab cell must pip install the course package"
    for i in installs:
        assert i > guard[0] and lines[i].startswith((" ", "\t")), (
            f"`{lines[i].strip()}` must run only inside the google.colab guard"
        )
        assert repo_url in lines[i], f"`{lines[i].strip()}` does not install from {repo_url}"


@each_notebook
def test_notebook_installs_nothing_outside_colab_cell(path):
    nb = read_notebook(path)
    for cell in code_cells(nb)[1:]:
        assert not re.search(r"pip install|conda install|^\s*!\s*pip", cell.source, re.M), (
            f"{describe(nb, cell)} installs something; only the Colab cell may"
        )


@each_notebook
def test_notebook_kernelspec_is_python3(path):
    kernelspec = read_notebook(path).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"kernelspec is {kernelspec}"


@each_notebook
def test_notebook_does_not_touch_sys_path(path):
    nb = read_notebook(path)
    for cell in code_cells(nb):
        assert "sys.path" not in cell.source, (
            f"{describe(nb, cell)} manipulates sys.path; the package is installed with pip -e ."
        )


@each_notebook
def test_notebook_ignores_few_outputs(path):
    nb = read_notebook(path)
    cells = code_cells(nb)
    ignored = [describe(nb, c) for c in cells if "nbval-ignore-output" in tags(c)]
    assert 3 * len(ignored) <= len(cells), (
        f"{len(ignored)} of {len(cells)} code cells are tagged nbval-ignore-output: {ignored}"
    )


@each_notebook
def test_notebook_gated_directives_are_closed(path):
    """Every {solution-start} (and {exercise-start}) is closed later, in order, never nested."""
    nb = read_notebook(path)
    text = "\n".join(cell.source for cell in markdown_cells(nb))
    for kind in ("solution", "exercise"):
        is_open = False
        for match in re.finditer(rf"\{{{kind}-(start|end)\}}", text):
            if match.group(1) == "start":
                assert not is_open, f"a {{{kind}-start}} opens before the previous one is closed"
            else:
                assert is_open, f"a {{{kind}-end}} has no {{{kind}-start}} before it"
            is_open = match.group(1) == "start"
        assert not is_open, f"a {{{kind}-start}} is never followed by {{{kind}-end}}"


@each_notebook
def test_notebook_has_summary_exercises_and_interview_question(path):
    nb = read_notebook(path)
    text = "\n".join(cell.source for cell in markdown_cells(nb))
    assert re.search(r"^## Summary\s*$", text, re.M), "missing a '## Summary' heading"
    assert re.search(r"^## Exercises\s*$", text, re.M), "missing a '## Exercises' heading"
    assert re.search(r"\{admonition\}[^\n]*Interview question", text), (
        "missing an 'Interview question' admonition"
    )


# ----------------------------------------------------------------------------- table of contents


@each_notebook
def test_notebook_is_listed_in_toc(path):
    entries = toc_entries(load_yaml("_toc.yml"))
    listed = {source.resolve() for entry in entries for source in sources_of(entry)}
    assert path.resolve() in listed, f"{path.relative_to(ROOT)} is not in _toc.yml"


def test_every_toc_entry_exists_once():
    entries = toc_entries(load_yaml("_toc.yml"))
    missing = [entry for entry in entries if not sources_of(entry)]
    assert not missing, f"_toc.yml lists {missing} but no such .md or .ipynb file exists"
    ambiguous = {entry: sources_of(entry) for entry in entries if len(sources_of(entry)) > 1}
    assert not ambiguous, f"_toc.yml entries with both a .md and an .ipynb: {ambiguous}"


def test_config_names_the_repository():
    url = load_yaml("_config.yml")["repository"]["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
