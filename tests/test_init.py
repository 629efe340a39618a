"""attention/__init__.py: the public names, and an import that stays fast."""

import subprocess
import sys

import pytest

import attention


def test_import_is_fast_and_loads_neither_matplotlib_nor_the_checkers():
    """`import attention` <= 0.3 s after torch (the best of three fresh interpreters)."""
    code = (
        "import sys, time, torch; t = time.perf_counter(); import attention; "
        "dt = time.perf_counter() - t; "
        "print(dt, 'matplotlib.pyplot' in sys.modules, 'attention.checks' in sys.modules)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(3)
    ]
    results = [r.stdout.split() for r in runs]
    assert all(pyplot == "False" and checks == "False" for _, pyplot, checks in results)
    assert min(float(seconds) for seconds, _, _ in results) <= 0.3, results


def test_lazy_names_load_on_first_use():
    assert attention.checks.check_rope.__name__ == "check_rope"
    assert attention.plot_curves is attention.plot.plot_curves
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        attention.nonexistent  # noqa: B018


def test_every_public_name_is_importable():
    for name in attention.__all__:
        assert getattr(attention, name) is not None, name
