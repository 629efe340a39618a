"""attention.rope.apply_rope: RoPE's rotation, both layouts, positions, errors (chapter 05)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attention import apply_rope
from attention.positional import apply_rope as reexported

F64 = torch.float64


def test_rope_is_still_importable_from_positional():
    assert reexported is apply_rope


def test_rope_position_zero_is_identity_and_norms_are_preserved():
    x = torch.randn(2, 3, 9, 16, dtype=F64)
    out = apply_rope(x)
    assert out.shape == x.shape
    assert torch.equal(out[..., 0, :], x[..., 0, :])
    assert_close(out.norm(dim=-1), x.norm(dim=-1))


def test_rope_equals_complex_multiplication_by_unit_phasors():
    x = torch.randn(4, 11, 8, dtype=F64)
    theta = 10000.0 ** (-torch.arange(0, 8, 2, dtype=F64) / 8)  # (4,)
    phasor = torch.polar(torch.ones(11, 4, dtype=F64), torch.arange(11, dtype=F64)[:, None] * theta)
    expected = torch.view_as_real(torch.view_as_complex(x.reshape(4, 11, 4, 2)) * phasor)
    assert_close(apply_rope(x), expected.reshape(4, 11, 8))


def test_rope_explicit_positions_equal_a_slice_of_the_longer_sequence():
    x = torch.randn(2, 12, 6, dtype=F64)
    assert_close(apply_rope(x[:, 5:], positions=torch.arange(5, 12)), apply_rope(x)[:, 5:])
    per_batch = torch.stack([torch.arange(3, 15), torch.arange(12)])  # (B, T) positions
    assert_close(apply_rope(x, positions=per_batch)[1], apply_rope(x)[1])


def test_rope_float32_agrees_with_float64():
    x = torch.randn(3, 40, 32, dtype=F64)
    assert_close(apply_rope(x.float()).double(), apply_rope(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("interleaved", [True, False])
def test_rope_half_precision_takes_the_real_path_and_agrees(interleaved):
    x = torch.randn(2, 12, 16, dtype=F64)
    ref = apply_rope(x, interleaved=interleaved)  # float64: the complex product
    for dtype in (torch.float16, torch.bfloat16):
        out = apply_rope(x.to(dtype), interleaved=interleaved)
        assert out.dtype == dtype
        assert_close(out.double(), ref, atol=0.05, rtol=0.05)


def test_rope_accepts_non_contiguous_inputs():
    big = torch.randn(2, 9, 33, dtype=F64)
    view = big[..., 1:17]  # odd storage offset, strided rows
    assert_close(apply_rope(view), apply_rope(view.contiguous()), atol=0, rtol=0)
    assert_close(
        apply_rope(view, interleaved=False), apply_rope(view.contiguous(), interleaved=False)
    )


@settings(max_examples=20, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    half_d=st.integers(1, 8),
    m=st.integers(0, 60),
    n=st.integers(0, 60),
    shift=st.integers(1, 500),
    seed=st.integers(0, 2**16),
)
def test_rope_score_depends_only_on_position_difference(lead, half_d, m, n, shift, seed):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, 1, 2 * half_d, generator=gen, dtype=F64)
    k = torch.randn(*lead, 1, 2 * half_d, generator=gen, dtype=F64)

    def score(i, j):
        qi = apply_rope(q, positions=torch.tensor([i]))
        kj = apply_rope(k, positions=torch.tensor([j]))
        return (qi * kj).sum(dim=-1)

    assert_close(score(m + shift, n + shift), score(m, n), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize(
    ("x", "kwargs", "message"),
    [
        (torch.randn(4, 5), {}, r"last dim D=5 of x \(4, 5\) must be even"),
        (torch.randn(6), {}, r"floating-point tensor \(\.\.\., T, D\), got shape \(6,\)"),
        (torch.ones(3, 4, dtype=torch.long), {}, r"got shape \(3, 4\), torch.int64"),
        ([[1.0, 2.0]], {}, r"floating-point tensor \(\.\.\., T, D\), got list"),
        (torch.randn(3, 4), {"positions": torch.arange(4)}, r"of shape \(4,\) do not broadcast"),
        (torch.randn(3, 4), {"positions": [0, 1, 2]}, r"positions list do not broadcast"),
    ],
)
def test_rope_errors_name_the_values(x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        apply_rope(x, **kwargs)


def test_rope_rejects_positions_that_do_not_broadcast_and_names_both_shapes():
    q = torch.randn(2, 3, 5, 8)  # (B, H, T, D)
    position_ids = torch.arange(5).expand(2, 5)  # Hugging Face's (B, T)
    message = (
        r"positions of shape \(2, 5\) do not broadcast to the leading dims \(2, 3, 5\) of x "
        r"\(2, 3, 5, 8\).*positions\[:, None, :\]"
    )
    with pytest.raises(ValueError, match=message):
        apply_rope(q, positions=position_ids)
    with pytest.raises(ValueError, match=r"of shape \(4, 2, 3, 5\)"):  # would grow x
        apply_rope(q, positions=torch.zeros(4, 2, 3, 5))


def test_rope_hugging_face_position_ids_map_with_a_head_axis():
    q = torch.randn(2, 3, 5, 8, dtype=F64)  # (B, H, T, D)
    position_ids = torch.stack([torch.arange(5), torch.arange(7, 12)])  # (B, T): a cache offset
    out = apply_rope(q, positions=position_ids[:, None, :])  # (B, 1, T) broadcasts over H
    assert_close(out[0], apply_rope(q[0]))
    assert_close(out[1], apply_rope(q[1], positions=torch.arange(7, 12)))


def rotate_half_rope(x, positions, base=10000.0):
    """Hugging Face's RoPE written from its documented equation, x·cos + rotate_half(x)·sin.

    rotate_half(x) = cat(-x[D/2:], x[:D/2]); cos and sin are those of the angles
    positions ⊗ base^(-2i/D), repeated for the two halves.
    """
    D = x.shape[-1]
    inv_freq = 1.0 / base ** (torch.arange(0, D, 2, dtype=F64) / D)  # (D/2,)
    freqs = positions.to(F64)[:, None] * inv_freq  # (T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, D)
    rotate_half = torch.cat((-x[..., D // 2 :], x[..., : D // 2]), dim=-1)
    return x * emb.cos() + rotate_half * emb.sin()


@pytest.mark.parametrize("D", [2, 8, 64])
def test_rope_halves_layout_matches_the_rotate_half_formula(D):
    x = torch.randn(2, 4, 9, D, dtype=F64)
    positions = torch.arange(3, 12)
    assert_close(
        apply_rope(x, positions=positions, interleaved=False), rotate_half_rope(x, positions)
    )
    interleaved = apply_rope(x, positions=positions)
    assert torch.allclose(interleaved, rotate_half_rope(x, positions)) == (D == 2)  # one pair


def test_rope_layouts_are_equal_up_to_a_permutation_of_the_features():
    D = 16
    x = torch.randn(3, 10, D, dtype=F64)
    perm = torch.arange(D).view(2, D // 2).T.flatten()  # 0, D/2, 1, D/2+1, ...: halves -> pairs
    inverse = perm.argsort()
    assert_close(apply_rope(x, interleaved=False), apply_rope(x[..., perm])[..., inverse])
    q, k = torch.randn(10, D, dtype=F64), torch.randn(10, D, dtype=F64)
    scores_halves = apply_rope(q, interleaved=False) @ apply_rope(k, interleaved=False).T
    assert_close(scores_halves, apply_rope(q[:, perm]) @ apply_rope(k[:, perm]).T)


def test_rope_halves_layout_is_relative_and_keeps_norms():
    q = torch.randn(1, 8, dtype=F64).expand(12, 8)  # the same vector at every position
    k = torch.randn(1, 8, dtype=F64).expand(12, 8)
    qr, kr = apply_rope(q, interleaved=False), apply_rope(k, interleaved=False)
    assert_close(qr.norm(dim=-1), q.norm(dim=-1))
    scores = qr @ kr.T  # (T, T)
    assert max(scores.diagonal(d).std().item() for d in range(-10, 11)) < 1e-12
