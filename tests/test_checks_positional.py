"""attention.checks for chapter 05: correct solutions pass, and each usual mistake is named.

The checkers draw fresh random cases on every call, so each mistake is checked several times.
"""

import math

import pytest
import torch

from attention import alibi_bias, apply_rope, sinusoidal_positional_encoding
from attention.checks import check_alibi_bias, check_rope, check_sinusoidal_positional_encoding

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
        sinusoidal_positional_encoding,
        lambda L, D: sinusoidal_positional_encoding(L, D, dtype=torch.float64),
    ],
    ids=["float32-learner", "package", "package-float64"],
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
    assert "floating-point torch.Tensor, got list" in diagnosis(
        check_sinusoidal_positional_encoding, lambda L, D: [[0.0] * D] * L
    )


def test_check_sinusoidal_draws_fresh_sizes_each_call():
    seen = []

    def fn(max_len, d_model):
        seen.append((max_len, d_model))
        return sinusoidal_positional_encoding(max_len, d_model)

    for _ in range(4):
        check_sinusoidal_positional_encoding(fn)
    assert len(set(seen)) > 3


# ----------------------------------------------------------------------------- RoPE


def learner_rope(
    *, pairs="interleaved", angles=None, sign=1.0, start=0, shift=0, two=2, swap=False
):
    """A learner's RoPE of one tensor, right by default, with one knob per usual mistake."""

    def rotate(x):
        T, D = x.shape[-2:]
        i = torch.arange(D // 2, dtype=torch.float64)
        theta = 10000.0 ** (-two * (i + shift) / D)  # (D/2,)
        layout = angles or pairs
        theta = theta.repeat_interleave(2) if layout == "interleaved" else torch.cat((theta, theta))
        angle = torch.arange(start, start + T, dtype=torch.float64)[:, None] * theta  # (T, D)
        if pairs == "interleaved":
            partner = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
        else:
            partner = torch.cat((-x[..., D // 2 :], x[..., : D // 2]), dim=-1)
        cos, sin = (angle.sin(), angle.cos()) if swap else (angle.cos(), angle.sin())
        return x * cos + sign * partner * sin

    return rotate


def both(rotate):
    return lambda q, k: (rotate(q), rotate(k))


@pytest.mark.parametrize(
    "fn",
    [
        both(learner_rope()),
        both(apply_rope),
        both(lambda x: apply_rope(x.float())),  # float32 angles are close enough
        lambda q, k: [apply_rope(q), apply_rope(k)],
    ],
    ids=["learner", "package", "package-float32", "returns-list"],
)
def test_check_rope_passes_correct_implementation_with_one_line(fn, capsys):
    for _ in range(REPEATS):
        assert check_rope(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_rope: all 3 random cases passed")


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (
            both(learner_rope(pairs="half")),
            "half-split pairs (x[i], x[i + D/2]) are the layout of Hugging Face's",
        ),
        (both(learner_rope(angles="half")), "the angles are laid out as cat([θ, θ])"),
        (
            both(learner_rope(pairs="half", angles="interleaved")),
            "the angles are laid out with repeat_interleave",
        ),
        (both(learner_rope(swap=True)), "sin and cos are swapped"),
        (both(learner_rope(sign=-1.0)), "the rotation turns the wrong way"),
        (both(learner_rope(start=1)), "the positions start at 1"),
        (both(learner_rope(shift=1)), "off-by-one in the exponent"),
        (both(learner_rope(two=1)), "the exponent misses its factor 2"),
        (both(learner_rope(two=-2)), "the exponent's sign is flipped"),
        (lambda q, k: (q, k), "q and k come back unrotated"),
        (
            lambda q, k: (learner_rope()(q), learner_rope(pairs="half")(k)),
            "q and k are rotated differently: q with interleaved pairs (x[2i], x[2i+1]), as "
            "asked, k with half-split pairs (x[i], x[i + D/2])",
        ),
        (
            lambda q, k: (learner_rope(pairs="half")(q), learner_rope()(k)),
            "q with half-split pairs (x[i], x[i + D/2]), k with interleaved pairs",
        ),
        (lambda q, k: (apply_rope(q), k), "k with no rotation at all"),
        (lambda q, k: (q, apply_rope(k)), "q with no rotation at all"),
        (lambda q, k: (apply_rope(q), apply_rope(k) * 2), "k is not rotated like the other one"),
        (
            both(lambda x: apply_rope(x, base=500.0)),
            "your function is a rotary embedding (position 0 unchanged, norms kept, scores "
            "relative), but its angles are not m·θ_i",
        ),
        (both(lambda x: 2 * apply_rope(x)), "norms must be preserved (a rotation)"),
        (
            both(lambda x: apply_rope(x, positions=torch.arange(x.shape[-2]) ** 2)),
            "must depend on m - n only",
        ),
        (lambda q, k: apply_rope(q), "return the pair (q_rotated, k_rotated)"),
        (both(lambda x: apply_rope(x)[..., :-1, :]), "expected (2, 6, 8)"),
    ],
    ids=[
        "half-split",
        "angles-half-pairs-interleaved",
        "angles-interleaved-pairs-half",
        "sin-cos-swapped",
        "wrong-way",
        "from-one",
        "exponent-off-by-one",
        "exponent-no-2",
        "exponent-sign",
        "unrotated",
        "q-interleaved-k-half",
        "q-half-k-interleaved",
        "k-unrotated",
        "q-unrotated",
        "k-scaled",
        "other-base",
        "scaled",
        "squared-positions",
        "returns-one-tensor",
        "drops-a-token",
    ],
)
def test_check_rope_names_the_mistake(mistake, expected):
    for _ in range(REPEATS):
        message = diagnosis(check_rope, mistake)
        assert message.startswith("check_rope failed on q and k of shape (2, 6, 8)")
        assert expected in message


def test_check_rope_reports_an_exception_with_the_case():
    def crashes(q, k):
        raise RuntimeError("The size of tensor a (8) must match the size of tensor b (4)")

    message = diagnosis(check_rope, crashes)
    assert "your function raised RuntimeError: The size of tensor a (8)" in message


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
    [learner_alibi(), learner_alibi(upper="-inf"), alibi_bias],
    ids=["learner", "with-causal-inf", "package"],
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
