"""attention.checks for chapter 09: a correct FLOP count passes, and each usual mistake is named.

The checker draws fresh random cases on every call, so each mistake is checked several times.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention.checks import check_attention_flops

REPEATS = 3  # fresh draws per mistake


def diagnosis(fn) -> str:
    with pytest.raises(AssertionError) as info:
        check_attention_flops(fn)
    return str(info.value)


@pytest.mark.parametrize(
    "fn",
    [
        lambda T, D: 8 * T * D * D + 4 * T * T * D,
        lambda T, D: float(4 * 2 * T * D**2 + 2 * 2 * T**2 * D),  # an integer-valued float
        lambda T, D: np.int64(8 * T * D * D + 4 * T * T * D),
        lambda T, D: torch.tensor(8 * T * D * D + 4 * T * T * D),
    ],
    ids=["learner", "float", "numpy-int", "tensor"],
)
def test_check_passes_correct_implementation_with_one_line(fn, capsys) -> None:
    for _ in range(REPEATS):
        assert check_attention_flops(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert "8TD² + 4T²D" in lines[0]


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (lambda T, D: 4 * T * D * D + 2 * T * T * D, "multiply-add is 2 FLOPs"),
        (lambda T, D: 6 * T * D * D + 4 * T * T * D, "output projection W^O is missing"),
        (lambda T, D: 3 * T * D * D + 2 * T * T * D, "output projection is missing and"),
        (lambda T, D: 4 * T * T * D, "the projections are missing"),
        (lambda T, D: 8 * T * D * D + 2 * T * T * D, "only one of the two T x T products"),
        (lambda T, D: T * T * D * D, "O(T²D²) is the article's mistake"),
        (lambda T, D: 2 * T * T * D * D, "O(T²D²) is the article's mistake"),
    ],
    ids=["multiply-add-as-1", "no-out-proj", "both", "no-projections", "one-product",
         "article", "article-x2"],
)  # fmt: skip
def test_check_names_each_mistake(fn, words) -> None:
    for _ in range(REPEATS):
        message = diagnosis(fn)
        assert words in message
        assert "check_attention_flops failed on T=" in message


def test_check_gives_the_formula_for_an_unknown_mistake() -> None:
    message = diagnosis(lambda T, D: 8 * T * D * D + 4 * T * T * D + 1)
    assert "8TD² + 4T²D" in message and "expected" in message


def test_check_refuses_non_numbers_and_fractions() -> None:
    assert "expected an int" in diagnosis(lambda T, D: "many")
    assert "expected an int" in diagnosis(lambda T, D: None)
    assert "whole number" in diagnosis(lambda T, D: 8 * T * D * D + 4 * T * T * D + 0.5)


def test_check_reports_the_learners_exception() -> None:
    def stub(T, D):
        raise NotImplementedError("count the FLOPs here")

    message = diagnosis(stub)
    assert "NotImplementedError: count the FLOPs here" in message


def test_cases_are_fresh_each_call(capsys) -> None:
    seen = []
    for _ in range(2):
        check_attention_flops(lambda T, D: seen.append((T, D)) or 8 * T * D * D + 4 * T * T * D)
    assert seen[:6] != seen[6:]
