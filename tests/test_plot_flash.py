"""attention.plot.flash: the memory-hierarchy and tiling figures of chapter 11."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import pytest

import attention.plot as aplot
from attention.plot import style

LEVELS = [("SRAM", 20e6, 19e12), ("HBM", 40e9, 1.5e12), ("DRAM", 1e12, 12.8e9)]


@pytest.fixture
def course_style():
    with mpl.rc_context():
        aplot.use_course_style()
        yield
    plt.close("all")


def _readable(fig) -> None:
    info = aplot.figure_info(aplot.render_png(fig))
    assert info["min_font_pt"] >= style.FONT_PT, info
    for column in (style.COLUMN_PX, style.PHONE_COLUMN_PX):
        assert aplot.text_px(info, min(info["display_width"], column)) >= style.MIN_TEXT_PX, info


def test_memory_hierarchy_labels_every_bar_with_its_value(course_style):
    fig = aplot.plot_memory_hierarchy(LEVELS, title="an A100")
    capacity, bandwidth = fig.axes
    assert [t.get_text() for t in capacity.texts] == ["20 MB", "40 GB", "1 TB"]
    assert [t.get_text() for t in bandwidth.texts] == ["19 TB/s", "1.5 TB/s", "12.8 GB/s"]
    assert capacity.get_xscale() == "log" and fig.get_suptitle() == "an A100"
    _readable(fig)


def test_tiling_numbers_the_tiles_in_each_schedules_order(course_style):
    fig, (fa1, fa2) = aplot.subplots(1, 2)
    aplot.plot_tiling(32, 48, 16, 16, order="fa1", ax=fa1)
    aplot.plot_tiling(32, 48, 16, 16, order="fa2", ax=fa2)
    at = {ax: {(t.get_position()): t.get_text() for t in ax.texts} for ax in (fa1, fa2)}
    assert at[fa1][(8.0, 24.0)] == "2" and at[fa2][(24.0, 8.0)] == "2"  # down vs along
    assert len(at[fa1]) == len(at[fa2]) == 6
    _readable(fig)


def test_causal_tiling_skips_the_tiles_after_the_bottom_right_diagonal(course_style):
    ax = aplot.plot_tiling(32, 64, 16, 16, order="fa2", causal=True)  # query i sees j <= i + 32
    numbered = {t.get_position() for t in ax.texts}
    assert (56.0, 8.0) not in numbered  # keys 48..63 after every query 0..15 (sees <= 47)
    assert (56.0, 24.0) in numbered and len(numbered) == 7


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(order="fa3"), "order must be 'fa1' or 'fa2', got 'fa3'"),
        (dict(order="fa1", block_q=0), "block_q must be a positive int, got 0"),
    ],
)
def test_tiling_rejects_bad_arguments(kwargs, match, course_style):
    args = {"T": 8, "S": 8, "block_q": 4, "block_k": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        aplot.plot_tiling(**args)


def test_memory_hierarchy_rejects_empty_and_non_positive_levels(course_style):
    with pytest.raises(ValueError, match="at least one memory level"):
        aplot.plot_memory_hierarchy([], title="t")
    with pytest.raises(ValueError, match="must be positive"):
        aplot.plot_memory_hierarchy([("x", 0.0, 1.0)], title="t")
