"""Shared fixtures of the unit tests: headless plotting, a fixed seed, no leaked figures."""

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: no display needed, PNGs reproducible

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import attention  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_close_figures():
    """Seed every generator before each test and close the figures it opened."""
    attention.set_seed(0)
    yield
    plt.close("all")
