"""attention.checks for chapter 10: correct path lengths pass, and each usual mistake is named.

The checker draws fresh random cases on every call, so each mistake is checked several times.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attention.checks import check_max_path_length

REPEATS = 3  # fresh draws per mistake


def diagnosis(fn) -> str:
    with pytest.raises(AssertionError) as info:
        check_max_path_length(fn)
    return str(info.value)


def learner(**overrides):
    """A learner's path length, right by default; ``overrides`` replaces one layer's formula."""

    def dilated(n, k):
        layers = 0
        while k**layers < n:
            layers += 1
        return layers

    formulas = {
        "attention": lambda n, k: 1,
        "recurrent": lambda n, k: n,
        "convolution": lambda n, k: math.ceil((n - 1) / (k - 1)),
        "dilated": dilated,
    }
    formulas.update(overrides)
    return lambda layer, n, k: formulas[layer](n, k)


@pytest.mark.parametrize(
    "fn",
    [
        learner(),
        learner(convolution=lambda n, k: np.ceil((n - 1) / (k - 1))),  # numpy float 4.0
        learner(recurrent=lambda n, k: torch.tensor(n)),
        learner(dilated=lambda n, k: math.ceil(round(math.log(n, k), 9))),  # rounded float log
    ],
    ids=["learner", "numpy-float", "tensor", "rounded-log"],
)
def test_check_passes_correct_implementation_with_one_line(fn, capsys) -> None:
    for _ in range(REPEATS):
        assert check_max_path_length(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_max_path_length: all 18 random cases match Table 1")


@pytest.mark.parametrize(
    ("mistake", "case", "expected"),
    [
        (learner(attention=lambda n, k: n), "'attention'", "n is the recurrent layer's"),
        (learner(attention=lambda n, k: 0), "'attention'", "the path length is 1, not 0"),
        (learner(recurrent=lambda n, k: n - 1), "'recurrent'", "off-by-one: the n - 1 steps"),
        (learner(recurrent=lambda n, k: 1), "'recurrent'", "its cell runs once per position"),
        (
            learner(convolution=lambda n, k: math.ceil((n - 1) / k)),
            "'convolution', n=9, k=3",
            "got 3, expected 4: kernel size instead of receptive-field growth",
        ),
        (
            learner(convolution=lambda n, k: math.ceil(n / k)),
            "'convolution', n=9, k=3",
            "kernel size instead of receptive-field growth",
        ),
        (
            learner(convolution=lambda n, k: (n - 1) // (k - 1)),
            "'convolution'",
            "rounded down",
        ),
        (
            learner(convolution=lambda n, k: math.ceil(n / (k - 1))),
            "'convolution', n=9, k=3",
            "got 5, expected 4: off-by-one",
        ),
        (
            learner(convolution=lambda n, k: learner()("dilated", n, k)),
            "'convolution'",
            "this is the dilated stack's ceil(log_k n)",
        ),
        (
            learner(dilated=lambda n, k: math.ceil(math.log(n, k))),
            "'dilated', n=125, k=5",
            "got 4, expected 3: floating-point logarithm",
        ),
        (
            learner(dilated=lambda n, k: math.ceil(math.log(n) / math.log(k))),
            "'dilated', n=125, k=5",
            "floating-point logarithm",
        ),
        (
            learner(dilated=lambda n, k: int(math.log(n, k)) + 1),
            "'dilated'",
            "off-by-one at exact powers",
        ),
        (
            learner(dilated=lambda n, k: math.ceil((n - 1) / (k - 1))),
            "'dilated', n=125, k=5",
            "the dilation is ignored",
        ),
        (
            learner(dilated=lambda n, k: math.ceil(math.log2(n))),
            "'dilated', n=125, k=5",
            "logarithm base 2",
        ),
    ],
    ids=[
        "attention-n",
        "attention-0",
        "recurrent-n-1",
        "recurrent-1",
        "conv-kernel-size",
        "conv-kernel-size-n",
        "conv-floor",
        "conv-n-over-k-1",
        "conv-dilated-formula",
        "dilated-float-log",
        "dilated-float-log-ratio",
        "dilated-floor-plus-one",
        "dilated-ignored",
        "dilated-log2",
    ],
)
def test_check_names_the_mistake(mistake, case, expected) -> None:
    for _ in range(REPEATS):
        message = diagnosis(mistake)
        assert message.startswith(f"check_max_path_length failed on layer={case}")
        assert expected in message


def test_check_reports_unknown_errors_types_fractions_and_exceptions() -> None:
    message = diagnosis(learner(recurrent=lambda n, k: 2 * n))
    assert "for 'recurrent' it is n (the cell is applied once per position" in message
    message = diagnosis(learner(convolution=lambda n, k: (n - 1) / (k - 1)))
    assert "a path length is a whole number of layers; round up" in message
    message = diagnosis(learner(attention=lambda n, k: "1"))
    assert "expected an int (a number of layers), got str" in message
    message = diagnosis(learner(attention=lambda n, k: True))
    assert "got bool" in message

    def crashes(layer, n, k):
        raise KeyError(layer)

    message = diagnosis(crashes)
    assert "your function raised KeyError: 'attention'" in message


def test_check_draws_fresh_cases_each_call() -> None:
    seen = set()

    def fn(layer, n, k):
        seen.add((layer, n, k))
        return learner()(layer, n, k)

    for _ in range(4):
        check_max_path_length(fn)
    assert len(seen) > 18 + 10
