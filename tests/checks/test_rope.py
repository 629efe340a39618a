"""attention.checks.rope (chapter 05): correct RoPE passes, and each usual mistake is named."""

from __future__ import annotations

import pytest
import torch

from attention import apply_rope
from attention.checks import check_rope

from .test_positional import REPEATS, diagnosis


def rope(x, positions=None, base=10000.0):
    """A learner's RoPE, interleaved pairs (the checker refuses attention.apply_rope itself)."""
    T, D = x.shape[-2:]  # tokens, features
    positions = torch.arange(T) if positions is None else positions
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    theta = base ** -(torch.arange(0, D, 2, dtype=work) / D)  # (D/2,)
    angle = positions.to(work)[..., None] * theta  # (T, D/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def test_the_learner_rope_is_the_package_one() -> None:
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(rope(x), apply_rope(x))
    torch.testing.assert_close(rope(x, base=500.0), apply_rope(x, base=500.0))


def test_check_rope_refuses_apply_rope() -> None:
    with pytest.raises(AssertionError, match="your function called attention.apply_rope"):
        check_rope(lambda q, k: (apply_rope(q), apply_rope(k)))


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
        both(rope),
        both(lambda x: rope(x.float())),  # float32 angles are close enough
        lambda q, k: [rope(q), rope(k)],
    ],
    ids=["learner", "whole-rope", "float32", "returns-list"],
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
        (lambda q, k: (rope(q), k), "k with no rotation at all"),
        (lambda q, k: (q, rope(k)), "q with no rotation at all"),
        (lambda q, k: (rope(q), rope(k) * 2), "k is not rotated like the other one"),
        (
            both(lambda x: rope(x, base=500.0)),
            "your function is a rotary embedding (position 0 unchanged, norms kept, scores "
            "relative), but its angles are not m·θ_i",
        ),
        (both(lambda x: 2 * rope(x)), "norms must be preserved (a rotation)"),
        (
            both(lambda x: rope(x, positions=torch.arange(x.shape[-2]) ** 2)),
            "must depend on m - n only",
        ),
        (lambda q, k: rope(q), "return the pair (q_rotated, k_rotated)"),
        (both(lambda x: rope(x)[..., :-1, :]), "expected (2, 6, 8)"),
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
