"""attention.checks.multihead: correct versions pass, each usual mistake is named (chapter 04)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attention import MultiHeadAttention
from attention.checks import check_multi_head_attention


def _learner_mha(*, bug: str = ""):
    """A learner's multi-head attention, written head by head with slices, with one bug."""

    def mha(x, q_proj, k_proj, v_proj, out_proj, num_heads, mask=None):
        B, T, D = x.shape  # batch, tokens, width
        H, Dh = num_heads, D // num_heads
        k_layer = q_proj if bug in ("shared", "shared_qk") else k_proj
        v_layer = q_proj if bug == "shared" else v_proj
        q, k, v = q_proj(x), k_layer(x), v_layer(x)  # 3 x (B, T, D)
        if bug == "split_sequence":
            q, k, v = (t.reshape(B, H, T, Dh) for t in (q, k, v))  # no transpose
        elif bug == "split_no_transpose":
            q, k, v = (t.view(B, T, H, Dh) for t in (q, k, v))  # heads left after the tokens
        else:
            q, k, v = (t.view(B, T, H, Dh).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
        scale = 1 / math.sqrt(D if bug == "scale_d_model" else Dh)
        scores = torch.einsum("...td,...sd->...ts", q, k) * scale
        if mask is not None and bug != "mask_after_softmax":
            scores = scores.masked_fill(mask if bug == "inverted_mask" else ~mask, -math.inf)
        weights = torch.softmax(scores, dim=-2 if bug == "softmax_axis" else -1)
        if mask is not None and bug == "mask_after_softmax":
            weights = weights * mask  # zeroed after the softmax (chapter 03's point)
        out = weights @ v
        if bug in ("merge_no_transpose", "split_sequence", "split_no_transpose"):
            out = out.reshape(B, T, D)
        else:
            out = out.transpose(1, 2).reshape(B, T, D)  # (B, H, T, Dh) -> (B, T, D)
        return out if bug == "no_out_proj" else out_proj(out)

    return mha


class LearnerMHA(nn.Module):
    """The module-class contract: built as cls(d_model, num_heads), with the four projections."""

    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(d_model, d_model) for _ in range(4)
        )

    def forward(self, x, mask=None):
        layers = (self.q_proj, self.k_proj, self.v_proj, self.out_proj)
        return _learner_mha()(x, *layers, self.num_heads, mask)


def test_check_multi_head_attention_accepts_correct_versions(capsys) -> None:
    check_multi_head_attention(_learner_mha())
    check_multi_head_attention(LearnerMHA)  # the module-class contract
    assert capsys.readouterr().out.count("all 4 random cases passed") == 2


@pytest.mark.parametrize(
    ("bug", "diagnosis"),
    [
        ("split_sequence", r"heads are split along the wrong axis"),
        ("split_no_transpose", r"heads are not moved in front of the tokens"),
        ("merge_no_transpose", r"merged without transposing back"),
        ("no_out_proj", r"output projection is missing"),
        ("shared", r"Q, K and V all use q_proj"),
        ("shared_qk", r"the keys use q_proj"),
        ("scale_d_model", r"scaled by 1/sqrt\(d_model\)"),
        ("softmax_axis", r"softmax runs over the queries"),
        ("mask_after_softmax", r"causal mask .*\n.*the mask is applied to the weights after"),
    ],
)
def test_check_multi_head_attention_names_the_mistake(bug: str, diagnosis: str) -> None:
    with pytest.raises(AssertionError, match=diagnosis):
        check_multi_head_attention(_learner_mha(bug=bug))


def test_check_multi_head_attention_names_an_inverted_mask() -> None:
    with pytest.raises(AssertionError, match=r"causal mask .*\n.*(polarity is inverted)"):
        check_multi_head_attention(_learner_mha(bug="inverted_mask"))


def test_check_multi_head_attention_rejects_an_instance_and_a_missing_submodule() -> None:
    with pytest.raises(AssertionError, match=r"pass the class \(MultiHeadAttention\)"):
        check_multi_head_attention(MultiHeadAttention(8, 2))

    class NoProj(nn.Module):
        def __init__(self, d_model: int, num_heads: int) -> None:
            super().__init__()
            self.w_q = nn.Linear(d_model, d_model)

    with pytest.raises(AssertionError, match=r"no nn.Linear submodule named 'q_proj'"):
        check_multi_head_attention(NoProj)


def test_check_multi_head_attention_leaves_the_global_random_state_alone(capsys) -> None:
    """Notebooks reseed once per demo; a checker call in between must not shift their numbers."""
    state = torch.get_rng_state()
    check_multi_head_attention(LearnerMHA)
    check_multi_head_attention(_learner_mha())
    assert torch.equal(torch.get_rng_state(), state)
    assert capsys.readouterr().out.count("passed") == 2
