"""The one figure style of the course: sizes chosen for the website's column and for phones.

A figure is designed in inches and shown at ``CSS_PX_PER_INCH`` CSS pixels per inch, on the
website (the ``<img>`` gets that width from the output's metadata), in JupyterLab and in Colab.
Its PNG holds ``SAVE_DPI`` pixels per inch, twice that, so it stays sharp on HiDPI screens.

How big the text looks, in CSS pixels ("text px"), for a figure whose PNG is ``natural`` pixels
wide and which the page shows ``displayed`` CSS pixels wide::

    text px = font size (pt) * dpi / 72 * displayed / natural

At the default width (4.8 in, shown 480 px wide; 960 px PNG) the smallest text, ``FONT_PT`` = 10.5
pt, is 14.6 px in the 741 px column of a 1366 px window and 10.4 px in the 342 px column of a
390 px phone, where the figure is scaled down to the column. A wider figure is scaled down more
on a phone: panels go one under the other, at most two side by side.

``show(fig)`` renders the PNG and records in it (a PNG text chunk, ``figure_info``) the dpi and
the smallest font size of any text it actually drew, so tests can check every committed figure.
"""

from __future__ import annotations

import io
import json
import struct
import textwrap
import zlib
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure

CSS_PX_PER_INCH = 100  # a figure inch is shown as 100 CSS px (website, JupyterLab, Colab)
SAVE_DPI = 200  # PNG pixels per figure inch: 2 PNG pixels per CSS pixel
WIDTH = 4.8  # inches: the default figure width (480 CSS px)
MAX_WIDTH = 7.4  # inches: the 741 px column of a 1366 px window
PANEL_HEIGHT = 3.0  # inches: the default height of one row of panels
MAX_COLS = 2  # panels side by side, at most

FONT_PT = 10.5  # the smallest text: ticks, legends, annotations, colour-bar labels
LABEL_PT = 11.0  # axis labels
TITLE_PT = 12.0  # titles
MIN_TEXT_PX = 10.0  # what tests require of every figure, at 1366 px and on a phone
COLUMN_PX = 741  # the website's content column at a 1366 px window (measured)
PHONE_COLUMN_PX = 342  # the same column on a 390 px phone (measured)

PNG_KEY = "attention.plot"  # the PNG text chunk that show() writes

COURSE_RC: dict[str, Any] = {
    "figure.figsize": (WIDTH, PANEL_HEIGHT),
    "figure.dpi": CSS_PX_PER_INCH,
    "savefig.dpi": SAVE_DPI,
    "figure.constrained_layout.use": True,
    "font.size": FONT_PT,
    "axes.titlesize": TITLE_PT,
    "axes.labelsize": LABEL_PT,
    "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT,
    "legend.fontsize": FONT_PT,
    "legend.title_fontsize": FONT_PT,
    "figure.titlesize": TITLE_PT,
    "figure.labelsize": LABEL_PT,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "axes.titlepad": 6,
    "legend.framealpha": 0.9,
}


def use_course_style() -> None:
    """Set matplotlib's defaults to the course's figure style (fonts, size, dpi, layout).

    Call it once, in a notebook's setup cell; importing ``attention`` changes nothing. Every
    figure drawn afterwards, the course's and the learner's, gets fonts sized for the column.

    Introduced in chapter 02.
    """
    mpl.rcParams.update(COURSE_RC)


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    width: float = WIDTH,
    height: float | None = None,
    **kwargs: Any,
):
    """Create a figure of the course's size: at most two panels side by side.

    Args:
        nrows, ncols: the grid of panels; ``ncols`` is at most 2 (stack more panels in rows).
        width: the figure width in inches (shown at 100 CSS px per inch), at most 7.4.
        height: the figure height in inches; by default 3.0 per row (2.6 per row for two
            columns).
        **kwargs: passed to ``matplotlib.pyplot.subplots`` (``sharex``, ``height_ratios``, ...).

    Returns:
        ``(fig, axes)`` as ``matplotlib.pyplot.subplots`` returns them.

    Shapes:
        axes: one Axes, or an array of ``(nrows,)``, ``(ncols,)`` or ``(nrows, ncols)``.

    Introduced in chapter 02.
    """
    if not 1 <= ncols <= MAX_COLS:
        raise ValueError(
            f"ncols={ncols}: at most {MAX_COLS} panels side by side stay readable on a phone; "
            "stack the others in rows"
        )
    if nrows < 1:
        raise ValueError(f"nrows must be at least 1, got {nrows}")
    if not 0 < width <= MAX_WIDTH:
        raise ValueError(f"width={width} in: the column holds 0 < width <= {MAX_WIDTH} inches")
    if height is None:
        height = nrows * (PANEL_HEIGHT if ncols == 1 else 2.6)
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def wrap(text: str, width_in: float, font_pt: float = TITLE_PT) -> str:
    """Break a title into lines that fit ``width_in`` inches at ``font_pt`` points.

    A character is taken as 0.6 em wide on average (DejaVu Sans, mixed case, with margin).
    """
    chars = max(12, int(width_in * 72 / (0.6 * font_pt)))
    return "\n".join(textwrap.wrap(text, chars)) if len(text) > chars else text


# ----------------------------------------------------------------------------- rendering


def _drawn_font_sizes(fig: Figure) -> list[tuple[float, str]]:
    """Draw the figure once and return (size in points, text) of every text actually drawn."""
    width, height = fig.bbox.size  # pixels at the figure's dpi
    renderer = RendererAgg(int(width) + 1, int(height) + 1, fig.dpi)
    drawn: list[tuple[float, str]] = []
    draw_text = renderer.draw_text

    def recording_draw_text(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if s.strip():
            drawn.append((float(prop.get_size_in_points()), s))
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = recording_draw_text  # this renderer only
    fig.draw(renderer)
    return drawn


def render_png(fig: Figure, *, dpi: int = SAVE_DPI) -> bytes:
    """Render a figure to PNG bytes at ``dpi``, recording its dpi and smallest font size in it.

    The record (``figure_info`` reads it back) is a PNG text chunk named ``attention.plot``: JSON
    with ``dpi``, ``css_px_per_inch``, ``min_font_pt`` and the text that has it.

    Introduced in chapter 02.
    """
    drawn = _drawn_font_sizes(fig)
    smallest = min(drawn, default=(0.0, ""))
    record = {
        "dpi": dpi,
        "css_px_per_inch": CSS_PX_PER_INCH,
        "min_font_pt": round(smallest[0], 2),
        "min_font_text": smallest[1][:40],
    }
    buffer = io.BytesIO()
    fig.savefig(
        buffer,
        format="png",
        dpi=dpi,
        bbox_inches="tight",
        pad_inches=0.04,
        facecolor="white",
        metadata={PNG_KEY: json.dumps(record)},  # ASCII JSON: valid PNG tEXt
    )
    return buffer.getvalue()


def show(fig: Figure | None = None) -> None:
    """Show a figure sharp and at the course's size, in a notebook; then close it.

    In IPython (Jupyter, Colab, the website's build) the figure is displayed as a PNG at 200 dpi
    whose output metadata sets its width to 100 CSS px per inch: sharp on HiDPI screens, the same
    size everywhere. Elsewhere this is ``matplotlib.pyplot.show()``.

    Args:
        fig: the figure; the current figure when None.

    Introduced in chapter 02.
    """
    fig = plt.gcf() if fig is None else fig
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python without IPython
        plt.show()
        return
    if get_ipython() is None:
        plt.show()
        return
    png = render_png(fig)
    info = figure_info(png)
    display(Image(data=png, format="png", width=info["display_width"]))
    plt.close(fig)


# ----------------------------------------------------------------------------- reading PNGs


def figure_info(png: bytes | str | Path) -> dict[str, Any]:
    """Read a PNG's size, and the record ``render_png`` wrote into it (if any).

    Args:
        png: the PNG's bytes or its path.

    Returns:
        ``width_px``, ``height_px`` (natural size), ``dpi`` (from the record, else the PNG's pHYs
        chunk, else None), ``min_font_pt`` (None without a record) and ``display_width``: the
        width in CSS px at which ``show`` displays it (None without a record).

    Introduced in chapter 02 (used by the tests of every figure).
    """
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    info: dict[str, Any] = {"dpi": None, "min_font_pt": None, "display_width": None}
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            info["width_px"], info["height_px"] = struct.unpack(">II", body[:8])
        elif kind == b"pHYs" and info["dpi"] is None:
            per_x, _, unit = struct.unpack(">IIB", body[:9])
            if unit == 1:  # pixels per metre
                info["dpi"] = round(per_x * 0.0254)
        elif kind in (b"tEXt", b"zTXt"):
            key, _, value = body.partition(b"\0")
            if kind == b"zTXt":
                value = zlib.decompress(value[1:])
            if key.decode("latin-1") == PNG_KEY:
                record = json.loads(value.decode("latin-1"))
                info.update(record)
        elif kind == b"IEND":
            break
    if info.get("min_font_pt") is not None:
        info["display_width"] = round(info["width_px"] * CSS_PX_PER_INCH / info["dpi"])
    return info


def text_px(info: dict[str, Any], displayed_width: float) -> float:
    """Return the smallest text's size in CSS px when the PNG is shown ``displayed_width`` wide.

    ``min_font_pt * dpi / 72 * displayed_width / width_px``: points to PNG pixels, then the
    browser's scaling of the PNG to the width it shows.
    """
    return info["min_font_pt"] * info["dpi"] / 72 * displayed_width / info["width_px"]
