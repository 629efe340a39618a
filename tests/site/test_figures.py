"""Figures on the built site: sharp (at least 1.5 PNG pixels per CSS pixel) and their text at
least 10 px, measured in the browser at a 1366 px window and on a 390 px phone.

"Text px" = the figure's smallest font (pt, recorded in the PNG by attention.plot.show)
* dpi / 72 * the width the browser displays the image at / the PNG's width. The same property
of the committed notebooks is checked without a browser by tests/test_plot_figures.py.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_site import NOTEBOOK_PAGES

from attention.plot import figure_info, text_px

MIN_TEXT_PX = 10.0
MEASURE_JS = """async () => {
  const images = Array.from(document.querySelectorAll('figure img'));
  for (const img of images) img.loading = 'eager';
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  return images.map((img) => ({src: img.src, displayed: img.getBoundingClientRect().width,
                               natural: img.naturalWidth}));
}"""


@pytest.mark.parametrize("width", [1366, 390])
@pytest.mark.parametrize("stem", NOTEBOOK_PAGES)
def test_figures_are_sharp_and_readable(open_page, site_dir, stem, width):
    page = open_page(stem, width=width, height=900)
    figures = page.evaluate(MEASURE_JS)
    if not figures:
        pytest.skip(f"{stem} has no figure")
    problems = []
    for figure in figures:
        png = site_dir / urlparse(figure["src"]).path.lstrip("/")
        info = figure_info(png)
        name = Path(png).name[:12]
        if info["min_font_pt"] is None:
            problems.append(f"{name}: not shown with attention.plot.show (no size record)")
            continue
        if figure["natural"] < 1.5 * figure["displayed"]:
            problems.append(f"{name}: {figure['natural']} px PNG shown {figure['displayed']} wide")
        px = text_px(info, figure["displayed"])
        if px < MIN_TEXT_PX:
            problems.append(f"{name}: smallest text {px:.1f} px ({info['min_font_text']!r})")
    assert not problems, f"{stem} at {width} px: {problems}"
