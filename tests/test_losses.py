"""Tests of attention.losses.masked_cross_entropy (chapter 07)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attention import masked_cross_entropy

F64 = torch.float64


def _padded_targets(B: int, T: int, V: int, pad_id: int, gen: torch.Generator) -> torch.Tensor:
    """Right-padded targets; every row has at least one real token, never equal to pad_id."""
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    real = torch.randint(0, V, (B, T), generator=gen)
    if 0 <= pad_id < V:
        real = torch.where(real == pad_id, (real + 1) % V, real)
    return real.masked_fill(torch.arange(T) >= lengths[:, None], pad_id)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.35, 1.0])
@pytest.mark.parametrize("pad_id", [0, 4, -100])
def test_masked_cross_entropy_matches_torch(label_smoothing: float, pad_id: int) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 9, 11, dtype=F64, generator=gen) * 3
    targets = _padded_targets(4, 9, 11, pad_id, gen)
    ref = F.cross_entropy(
        logits.flatten(0, 1),
        targets.flatten(),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )
    got = masked_cross_entropy(logits, targets, pad_id, label_smoothing)
    assert_close(got, ref, rtol=0, atol=1e-12)
    assert got.shape == ()


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=0, max_size=2),
    V=st.integers(2, 9),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_masked_cross_entropy_matches_torch_for_random_shapes(shape, V, label_smoothing, seed):
    gen = torch.Generator().manual_seed(seed)
    shape = [*shape, 3]  # leading dims (...), the last with room for padding
    pad_id = int(torch.randint(0, V, (1,), generator=gen))
    targets = _padded_targets(int(torch.tensor(shape[:-1]).prod()), 3, V, pad_id, gen)
    targets = targets.reshape(shape)
    logits = torch.randn(*shape, V, dtype=F64, generator=gen)
    ref = F.cross_entropy(
        logits.reshape(-1, V),
        targets.flatten(),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )
    assert_close(masked_cross_entropy(logits, targets, pad_id, label_smoothing), ref)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_pad_positions_get_exactly_zero_gradient(label_smoothing: float) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = (torch.randn(3, 8, 6, dtype=F64, generator=gen) * 5).requires_grad_(True)
    targets = _padded_targets(3, 8, 6, 2, gen)
    masked_cross_entropy(logits, targets, 2, label_smoothing).backward()
    pads = targets == 2
    assert pads.any() and (~pads).any()
    assert (logits.grad[pads] == 0).all()
    assert (logits.grad[~pads].abs().sum(-1) > 0).all()


def test_loss_ignores_what_the_model_predicts_at_pad_positions() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 6, 5, dtype=F64, generator=gen)
    targets = _padded_targets(2, 6, 5, 0, gen)
    other = logits.clone()
    other[targets == 0] = torch.randn(int((targets == 0).sum()), 5, dtype=F64) * 100
    assert masked_cross_entropy(other, targets, 0) == masked_cross_entropy(logits, targets, 0)


def test_loss_is_the_mean_over_tokens_not_over_sequences() -> None:
    logits = torch.zeros(2, 4, 3, dtype=F64)
    logits[0, 0, 1] = 5.0  # the one token of sequence 0 is easy
    targets = torch.tensor([[1, 0, 0, 0], [2, 2, 2, 2]])  # lengths 1 and 4, pad_id 0
    per_token = -torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)
    expected = (per_token[0, 0] + per_token[1].sum()) / 5  # five real tokens in all
    assert_close(masked_cross_entropy(logits, targets, 0), expected)


def test_errors_name_the_values() -> None:
    logits, targets = torch.randn(2, 5, 7), torch.ones(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"logits \(2, 5, 7\) and targets \(2, 4\) do not match"):
        masked_cross_entropy(logits, targets[:, 1:], 0)
    with pytest.raises(ValueError, match=r"shifted by one"):
        masked_cross_entropy(logits, targets[:, 1:], 0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        masked_cross_entropy(logits, targets, 0, 1.5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got -0.1"):
        masked_cross_entropy(logits, targets, 0, -0.1)
    with pytest.raises(ValueError, match=r"every target is pad_id=1: the mean over non-pad"):
        masked_cross_entropy(logits, targets, 1)
    with pytest.raises(ValueError, match=r"targets must be a torch.long tensor .* got torch.float"):
        masked_cross_entropy(logits, targets.float(), 0)
    with pytest.raises(ValueError, match=r"logits must be a float tensor \(..., V\)"):
        masked_cross_entropy(targets, targets, 0)
    with pytest.raises(ValueError, match=r"class ids in \[0, 7\), got values in \[1, 9\]"):
        masked_cross_entropy(logits, targets.index_fill(1, torch.tensor([2]), 9), 0)
    with pytest.raises(ValueError, match=r"pad_id must be an int, got None"):
        masked_cross_entropy(logits, targets, None)
