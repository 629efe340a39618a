"""attention.plot's figure style: sized for the column; 200 dpi PNGs record their smallest font."""

import base64
import io
import subprocess
import sys

import matplotlib as mpl
import matplotlib.pyplot as plt
import pytest
import torch

import attention.plot as aplot
from attention.plot import style


@pytest.fixture
def course_style():
    """Apply the course style for one test, then restore matplotlib's settings."""
    with mpl.rc_context():
        aplot.use_course_style()
        yield
    plt.close("all")


def test_importing_attention_leaves_matplotlib_settings_alone():
    code = (
        "import matplotlib as mpl; before = dict(mpl.rcParams); "
        "import attention, attention.plot; "
        "changed = [k for k, v in mpl.rcParams.items() if before[k] != v]; "
        "assert not changed, changed; print('unchanged')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "unchanged"


def test_use_course_style_sets_fonts_size_and_dpi(course_style):
    assert mpl.rcParams["xtick.labelsize"] == style.FONT_PT
    assert mpl.rcParams["axes.titlesize"] == style.TITLE_PT
    assert tuple(mpl.rcParams["figure.figsize"]) == (style.WIDTH, style.PANEL_HEIGHT)
    assert mpl.rcParams["savefig.dpi"] == style.SAVE_DPI >= 150


def test_subplots_allows_two_panels_side_by_side_and_stacks_more(course_style):
    fig, axes = aplot.subplots(3, 2)
    assert axes.shape == (3, 2)
    assert fig.get_figwidth() == style.WIDTH
    with pytest.raises(ValueError, match=r"ncols=3: at most 2 panels side by side"):
        aplot.subplots(1, 3)
    with pytest.raises(ValueError, match=r"width=9 in: the column holds"):
        aplot.subplots(width=9)


def test_render_png_records_dpi_and_the_smallest_text_actually_drawn(course_style):
    fig, ax = aplot.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("title")
    ax.text(0.5, 0.5, "tiny", fontsize=6)
    ax.text(0.2, 0.2, "hidden", fontsize=3, visible=False)  # never drawn: not counted
    info = aplot.figure_info(aplot.render_png(fig))
    assert info["dpi"] == 200
    assert info["min_font_pt"] == 6.0 and info["min_font_text"] == "tiny"
    assert abs(info["width_px"] - style.WIDTH * 200) <= 4, "tight bbox keeps the figure width"
    assert info["display_width"] == round(info["width_px"] / 2)


def test_text_px_is_points_times_dpi_over_72_times_the_browsers_scaling():
    info = {"min_font_pt": 10.5, "dpi": 200, "width_px": 960}
    assert aplot.text_px(info, 480) == pytest.approx(10.5 * 200 / 72 / 2)
    assert aplot.text_px(info, 342) == pytest.approx(10.5 * 200 / 72 * 342 / 960)


def test_figure_info_reads_a_png_without_record():
    fig = plt.figure(figsize=(2, 1), dpi=50)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    info = aplot.figure_info(buffer.getvalue())
    assert (info["width_px"], info["height_px"], info["dpi"]) == (100, 50, 50)
    assert info["min_font_pt"] is None and info["display_width"] is None
    with pytest.raises(ValueError, match="not a PNG"):
        aplot.figure_info(b"GIF89a")


def test_show_displays_a_png_with_its_css_width_and_closes_the_figure(course_style):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    fig, ax = aplot.subplots()
    ax.plot([0, 1], [1, 0])
    with capture_output() as captured:
        aplot.show(fig)
    (output,) = captured.outputs
    info = aplot.figure_info(base64.b64decode(output.data["image/png"]))
    assert output.metadata["image/png"] == {"width": info["display_width"]}
    assert info["display_width"] == pytest.approx(style.WIDTH * 100, abs=2)
    assert not plt.fignum_exists(fig.number)


def _helper_figures():
    tokens = ["the", "cat", "sat", "on", "the", "mat"]
    weights = torch.softmax(torch.randn(6, 6), dim=-1)
    yield "plot_attention", aplot.plot_attention(weights, tokens, tokens, annotate=True).figure
    yield (
        "plot_curves",
        aplot.plot_curves(
            [1, 2, 4, 8], {"a": [1, 2, 3, 4], "b": [2, 3, 4, 5]}, xlabel="x", ylabel="y", title="t"
        ).figure,
    )
    yield (
        "show_heatmaps",
        aplot.show_heatmaps(
            torch.rand(2, 4, 6, 6), tokens, tokens, row_titles=["layer 1", "layer 2"], title="maps"
        ),
    )
    yield "plot_head_split", aplot.plot_head_split(6, 12, 3, tokens, title="split")
    pe = torch.randn(50, 16)
    yield "plot_positional_encoding", aplot.plot_positional_encoding(pe).figure
    yield "plot_similarity_vs_distance", aplot.plot_similarity_vs_distance(pe).figure


def test_every_helper_figure_is_readable_in_the_column_and_on_a_phone(course_style):
    for name, fig in _helper_figures():
        info = aplot.figure_info(aplot.render_png(fig))
        assert info["min_font_pt"] >= style.FONT_PT, (name, info)
        desktop = min(info["display_width"], style.COLUMN_PX)
        phone = min(info["display_width"], style.PHONE_COLUMN_PX)
        assert info["width_px"] >= 1.5 * desktop, (name, info)
        assert aplot.text_px(info, desktop) >= style.MIN_TEXT_PX, (name, info)
        assert aplot.text_px(info, phone) >= style.MIN_TEXT_PX, (name, info)
