"""Every figure committed in a chapter notebook is sharp and readable, in the column and on a phone.

Each figure output must come from ``attention.plot.show`` (its PNG records the dpi and the smallest
font drawn, see attention/plot/style.py). For the website's column at a 1366 px window (741 px)
and a 390 px phone (342 px), a figure is displayed ``min(its CSS width, the column)`` wide, and

    text px = smallest font (pt) * dpi / 72 * displayed width / PNG width

must be at least 10 px; the PNG must hold at least 1.5 pixels per displayed CSS pixel.
tests/site/test_figures.py measures the same in a browser, on the built site.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest

from attention.plot import figure_info, text_px
from attention.plot.style import COLUMN_PX, MIN_TEXT_PX, PHONE_COLUMN_PX

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _figures(path: Path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        name = cell.metadata.get("mystnb", {}).get("figure", {}).get("name", cell.get("id"))
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                png = base64.b64decode(output["data"]["image/png"])
                width = output.get("metadata", {}).get("image/png", {}).get("width")
                yield name, png, width


FIGURES = [
    pytest.param(png, width, id=f"{path.stem}:{name}")
    for path in NOTEBOOKS
    for name, png, width in _figures(path)
]


@pytest.mark.parametrize(("png", "css_width"), FIGURES)
def test_figure_is_sharp_and_its_text_readable(png, css_width):
    info = figure_info(png)
    assert info["min_font_pt"] is not None, (
        "this figure was not shown with attention.plot.show(fig): no size record in its PNG"
    )
    assert css_width == info["display_width"], (
        f"the output's width metadata ({css_width}) is not the PNG's CSS width "
        f"({info['display_width']})"
    )
    for where, column in (("the 741 px column", COLUMN_PX), ("a 390 px phone", PHONE_COLUMN_PX)):
        displayed = min(css_width, column)
        assert info["width_px"] >= 1.5 * min(css_width, COLUMN_PX), info
        px = text_px(info, displayed)
        assert px >= MIN_TEXT_PX, (
            f"in {where} its smallest text ({info['min_font_pt']} pt, "
            f"{info['min_font_text']!r}) is {px:.1f} px"
        )


def test_every_chapter_figure_is_checked():
    assert len(FIGURES) >= 20, f"only {len(FIGURES)} figures found in {len(NOTEBOOKS)} notebooks"
