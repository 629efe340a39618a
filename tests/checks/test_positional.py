"""attention.checks.positional (chapter 05): correct solutions pass, each usual mistake is named.

The checkers draw fresh random cases on every call, so each mistake is checked several times.
"""

import math

import pytest
import torch

from attention.checks import check_alibi_bias, check_sinusoidal_positional_encoding

REPEATS = 3  # fresh draws per mistake


def diagnosis(check, fn) -> str:
    with pytest.raises(AssertionError) as info:
        check(fn)
    return str(info.value)


# ----------------------------------------------------------------------------- sinusoidal


def learner_sinusoid(*, start=0, exponent=2, shift=0, swap=False, op="divide", layout="pairs"):
    """A learner's encoding in float32, right by default, with one knob per usual mistake."""

    def encoding(max_len, d_model):
        pos = torch.arange(start, start + max_len, dtype=torch.float32)[:, None]  # (L, 1)
        i = torch.arange(d_model // 2, dtype=torch.float32)  # (D/2,)
        power = exponent * (i + shift) / d_model
        freq = torch.exp(-math.log(10000.0) * power) if op == "divide" else 10000.0**power
        if op == "sqrt":
            freq = torch.full_like(i, 1 / math.sqrt(d_model))
        sin, cos = torch.sin(pos * freq), torch.cos(pos * freq)  # (L, D/2) each
        if swap:
            sin, cos = cos, sin
        if layout == "halves":
            return torch.cat((sin, cos), dim=-1)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = sin, cos
        if layout == "own-column":
            pe[:, 1::2] = torch.cos(pos * torch.exp(-math.log(10000.0) * (2 * i + 1) / d_model))
        return pe

    return encoding


@pytest.mark.parametrize(
    "fn",
    [
        learner_sinusoid(),
        lambda L, D: learner_sinusoid()(L, D).double(),
    ],
    ids=["float32-learner", "float64"],
)
def test_check_sinusoidal_passes_correct_implementation_with_one_line(fn, capsys):
    for _ in range(REPEATS):
        assert check_sinusoidal_positional_encoding(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_sinusoidal_positional_encoding: all 3 random sizes match")


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (learner_sinusoid(swap=True), "sin and cos are swapped"),
        (learner_sinusoid(start=1), "positions start at 1"),
        (learner_sinusoid(shift=1), "off-by-one in the exponent"),
        (learner_sinusoid(exponent=4), "the exponent is doubled"),
        (learner_sinusoid(exponent=1), "the exponent misses its factor 2"),
        (learner_sinusoid(layout="own-column"), "the cos column 2i+1 uses 10000^((2i+1)/d_model)"),
        (learner_sinusoid(op="multiply"), "divide by it instead"),
        (learner_sinusoid(op="sqrt"), "the article's prose formula sin(p/sqrt(d))"),
        (learner_sinusoid(layout="halves"), "all sines come first"),
        (lambda L, D: learner_sinusoid()(L, D)[None], "drop the batch dim"),
        (lambda L, D: learner_sinusoid()(L, D).T, "rows are positions, columns are features"),
    ],
    ids=[
        "swap",
        "from-one",
        "exponent-off-by-one",
        "exponent-doubled",
        "exponent-no-2",
        "own-column-exponent",
        "multiply",
        "article-prose",
        "halves",
        "batch-dim",
        "transposed",
    ],
)
def test_check_sinusoidal_names_the_mistake(mistake, expected):
    for _ in range(REPEATS):
        message = diagnosis(check_sinusoidal_positional_encoding, mistake)
        assert message.startswith("check_sinusoidal_positional_encoding failed on max_len=")
        assert expected in message


def test_check_sinusoidal_reports_unknown_error_and_exceptions_and_wrong_types():
    message = diagnosis(
        check_sinusoidal_positional_encoding, lambda L, D: learner_sinusoid()(L, D) + 0.1
    )
    assert "differs from PE[p, 2i] = sin(p / 10000^(2i/d_model))" in message
    assert "first at position 0" in message

    def crashes(max_len, d_model):
        raise IndexError("index 3 is out of bounds")

    message = diagnosis(check_sinusoidal_positional_encoding, crashes)
    assert "your function raised IndexError: index 3 is out of bounds" in message
    assert "floating-point tensor, got list" in diagnosis(
        check_sinusoidal_positional_encoding, lambda L, D: [[0.0] * D] * L
    )


def test_check_sinusoidal_draws_fresh_sizes_each_call():
    seen = []

    def fn(max_len, d_model):
        seen.append((max_len, d_model))
        return learner_sinusoid()(max_len, d_model)

    for _ in range(4):
        check_sinusoidal_positional_encoding(fn)
    assert len(set(seen)) > 3


# ----------------------------------------------------------------------------- ALiBi


def learner_alibi(*, first=1, rate=8, sign=-1.0, reverse=False, upper="mirror"):
    """A learner's ALiBi bias, right by default, with one knob per usual mistake."""

    def bias(num_heads, T):
        h = torch.arange(first, first + num_heads, dtype=torch.float64)
        slopes = 2.0 ** (-rate * h / num_heads) if rate else torch.ones(num_heads)
        slopes = slopes.flip(0) if reverse else slopes
        distance = torch.arange(T)[:, None] - torch.arange(T)  # (T, T): i - j
        out = sign * slopes[:, None, None] * distance  # (H, T, T)
        if upper == "-inf":  # a causal mask folded in: fine, j > i is not checked
            out = out.masked_fill(distance < 0, float("-inf"))
        return out

    return bias


@pytest.mark.parametrize(
    "fn",
    [learner_alibi(), learner_alibi(upper="-inf")],
    ids=["learner", "with-causal-inf"],
)
def test_check_alibi_passes_correct_implementation_with_one_line(fn, capsys):
    for _ in range(REPEATS):
        assert check_alibi_bias(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_alibi_bias: all 4 random sizes match")


def hard_coded_8_head_slopes(num_heads, T):
    slopes = 2.0 ** -torch.arange(1, num_heads + 1, dtype=torch.float64)
    return -slopes[:, None, None] * (torch.arange(T)[:, None] - torch.arange(T))


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (learner_alibi(sign=1.0), "the bias has the wrong sign"),
        (learner_alibi(first=0), "off-by-one in the slopes"),
        (learner_alibi(reverse=True), "the slopes are in reverse order"),
        (hard_coded_8_head_slopes, "the slopes are 2^(-h), the 8-head values"),
        (learner_alibi(rate=0), "every head has slope 1"),
        (lambda H, T: learner_alibi()(H, T)[0], "expected (H, T, T) = (8, "),  # 1st case: H=8
        (lambda H, T: learner_alibi()(H, T) * 0.5, "differs from -2^(-8h/H)·(i - j)"),
    ],
    ids=["sign", "slopes-from-0", "reversed", "8-head-slopes", "no-slope", "shape", "other"],
)
def test_check_alibi_names_the_mistake(mistake, expected):
    for _ in range(REPEATS):
        message = diagnosis(check_alibi_bias, mistake)
        assert message.startswith("check_alibi_bias failed on num_heads=")
        assert expected in message
