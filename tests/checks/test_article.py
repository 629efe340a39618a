"""attention.checks.article (chapter 04): the article's bugs, then each wrong dropout, named.

With ``training=True`` and ``dropout=0.5`` the fixed function must return ``(out, weights)``;
the checker recomputes the output from the returned weights, requires every weight to be 0 or
the reference weight / (1 - p), and 30-70% of them to be 0. Each way of putting dropout in the
wrong place is named. The checker draws fresh cases on every call, so each mistake is checked
several times; the mistakes go through the dropout stage alone (the earlier stages, among
them the article's (32, 64, 512) call, are the same for all of them and take seconds).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention.checks import check_article_attention_fix
from attention.checks._common import _generator
from attention.checks.article import _check_article_dropout

REPEATS = 3  # fresh draws per mistake
PASSES = 2  # full checks of a correct fix (each runs the article's own call)


def learner_fix(*, where: str = "weights", scaled: bool = True, rate=None, returns: str = "after"):
    """A fixed article function, right by default, with one knob per dropout mistake.

    ``where``: what dropout hits ("weights", "values", "scores", "input", "outputs", "none");
    ``scaled``: whether kept entries are divided by 1 - p; ``rate``: a rate used instead of
    ``dropout``; ``returns``: "after" (the weights after dropout), "before", or "out" only.
    """

    def drop(t, p, training):
        if not training or p == 0:
            return t
        p = p if rate is None else rate
        kept = (torch.rand_like(t) >= p).to(t.dtype)
        return t * kept / (1 - p) if scaled else t * kept

    def fixed_attention(x, q_proj, k_proj, v_proj, out_proj, num_heads, dropout, training):
        B, T, D = x.shape  # batch, tokens, width
        H, Dh = num_heads, D // num_heads
        if where == "input":
            x = drop(x, dropout, training)
        q, k, v = (
            t.view(B, T, H, Dh).transpose(1, 2) for t in (q_proj(x), k_proj(x), v_proj(x))
        )  # 3 x (B, H, T, Dh)
        if where == "values":
            v = drop(v, dropout, training)
        scores = q @ k.transpose(-2, -1) / math.sqrt(Dh)  # (B, H, T, T)
        if where == "scores":
            scores = drop(scores, dropout, training)
        before = torch.softmax(scores, dim=-1)
        weights = drop(before, dropout, training) if where == "weights" else before
        out = (weights @ v).transpose(1, 2).reshape(B, T, D)  # (B, H, T, Dh) -> (B, T, D)
        if where == "outputs":
            out = drop(out, dropout, training)
        out = out_proj(out)
        if returns == "out":
            return out
        return out, before if returns == "before" else weights

    return fixed_attention


def diagnosis(fn) -> str:
    with pytest.raises(AssertionError) as info:
        _check_article_dropout("check_article_attention_fix", _generator(), fn)
    message = str(info.value)
    assert message.startswith("check_article_attention_fix failed on ")
    assert "dropout=0.5, training=True" in message  # the dropout stage, not an earlier one
    return message


@pytest.mark.parametrize(
    "fn",
    [
        learner_fix(),
        lambda x, q, k, v, o, h, dropout, training: _with_f_dropout(
            x, q, k, v, o, h, dropout, training
        ),
    ],
    ids=["by-hand", "F.dropout"],
)
def test_correct_dropout_passes(fn, capsys) -> None:
    state = torch.get_rng_state()
    for _ in range(PASSES):
        check_article_attention_fix(fn)
    assert capsys.readouterr().out.count("all 4 stages passed") == PASSES
    assert torch.equal(torch.get_rng_state(), state)  # notebooks' seeded numbers stay put


def _with_f_dropout(x, q_proj, k_proj, v_proj, out_proj, num_heads, dropout, training):
    B, T, D = x.shape
    H, Dh = num_heads, D // num_heads
    q, k, v = (t.view(B, T, H, Dh).transpose(1, 2) for t in (q_proj(x), k_proj(x), v_proj(x)))
    weights = F.dropout(
        torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(Dh), -1), dropout, training
    )
    return out_proj((weights @ v).transpose(1, 2).reshape(B, T, D)), weights


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (learner_fix(where="none"), "dropout is not applied when training=True"),
        (learner_fix(where="values"), "dropout is applied to the values v"),
        (learner_fix(where="scores"), "dropout is applied to the scores before the softmax"),
        (learner_fix(where="scores", scaled=False), "applied to the scores before the softmax"),
        (learner_fix(where="input"), "dropout is applied to the input x"),
        (learner_fix(where="outputs"), "dropout is applied to the outputs"),
        (learner_fix(scaled=False), "the kept weights are not rescaled"),
        (learner_fix(rate=0.1), "multiplied by 1.111, the factor of a dropout rate of 0.1"),
        (learner_fix(returns="before"), "the weights returned are those from before dropout"),
        (learner_fix(returns="out"), "with dropout, return (out, weights)"),
    ],
    ids=[
        "none",
        "values",
        "scores",
        "scores-unscaled",
        "input",
        "outputs",
        "unscaled",
        "wrong-rate",
        "weights-before-dropout",
        "out-only",
    ],
)
def test_wrong_dropout_is_named(mistake, expected: str) -> None:
    for _ in range(REPEATS):
        assert expected in diagnosis(mistake)


def test_a_rate_with_the_right_scale_but_too_few_zeros_is_named() -> None:
    def few_zeros(x, q_proj, k_proj, v_proj, out_proj, num_heads, dropout, training):
        out, weights = _with_f_dropout(x, q_proj, k_proj, v_proj, out_proj, num_heads, 0.0, False)
        if training and dropout > 0:  # zero 5% of the weights, scale the rest by 1/(1 - p)
            kept = (torch.rand_like(weights) >= 0.05).to(weights.dtype)
            weights = weights * kept / (1 - dropout)
            B, H, T, _ = weights.shape
            v = v_proj(x).view(B, T, H, -1).transpose(1, 2)
            out = out_proj((weights @ v).transpose(1, 2).reshape(B, T, -1))
        return out, weights

    for _ in range(REPEATS):
        assert "of the weights are 0 with dropout=0.5 (expected about 50%)" in diagnosis(few_zeros)


def test_the_dropout_stage_passes_a_correct_fix_on_every_draw() -> None:
    for _ in range(20):  # fresh layers, inputs and dropout masks each time: no false alarm
        assert _check_article_dropout("check", _generator(), learner_fix()) is None


# check_article_attention_fix: the Q19/Q20 bug hunt ---------------------------------------------


def _article_fix(*, bug: str = ""):
    """A fixed version of the article's Q20 function, with one of the article's bugs left in."""

    def multi_head_attention(x, q_proj, k_proj, v_proj, out_proj, num_heads, dropout, training):
        B, T, D = x.shape  # batch, tokens, width
        H, Dh = num_heads, D // num_heads
        if bug == "q19":  # the article's Q19 computation, with the given weights
            W = q_proj.weight
            attention = nn.Softmax(dim=1)(torch.matmul(x, W.t()) / math.sqrt(Dh))
            return out_proj(torch.matmul(attention, W))
        if bug == "fresh_layers":
            q_proj = nn.Linear(D, D, dtype=x.dtype)
        if bug == "shared_weight":
            q = k = v = x @ q_proj.weight.t()
        else:
            q, k, v = q_proj(x), k_proj(x), v_proj(x)  # 3 x (B, T, D)
        heads, weights = [], []
        for h in range(H):  # a loop over heads is slow but correct
            cols = slice(h * Dh, (h + 1) * Dh)
            scores = q[..., cols] @ k[..., cols].transpose(-2, -1) / math.sqrt(Dh)
            attention = torch.softmax(scores, dim=1 if bug == "softmax_dim1" else -1)
            active = (training or bug == "dropout_always") and bug != "dropout_never"
            if bug != "dropout_on_outputs":
                attention = F.dropout(attention, dropout, training=active)
            weights.append(attention)  # (B, T, T), after dropout
            heads.append(attention @ v[..., cols])  # (B, T, Dh)
        if bug == "cat_sequence":
            return torch.cat(heads, dim=1)  # (B, H*T, Dh)
        out = torch.cat(heads, dim=-1)  # H x (B, T, Dh) -> (B, T, D)
        if bug == "dropout_on_outputs":
            out = F.dropout(out, dropout, training=training)
        return out_proj(out), torch.stack(weights, dim=1)  # (B, T, D), (B, H, T, T)

    return multi_head_attention


def test_check_article_attention_fix_accepts_a_correct_fix(capsys) -> None:
    check_article_attention_fix(_article_fix())
    assert "all 4 stages passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bug", "diagnosis"),
    [
        ("q19", r"still the article's Q19 computation"),
        ("shared_weight", r"Q = K = V = one weight matrix"),
        ("fresh_layers", r"creates new random layers \(C19-6\)"),
        ("dropout_always", r"dropout is active with training=False \(C19-7\)"),
        ("softmax_dim1", r"softmax runs over the heads|softmax runs over the queries"),
        ("cat_sequence", r"concatenated along the tokens"),
        ("dropout_on_outputs", r"dropout is applied to the outputs"),
        ("dropout_never", r"dropout is not applied when training=True"),
    ],
)
def test_check_article_attention_fix_names_the_bug(bug: str, diagnosis: str) -> None:
    with pytest.raises(AssertionError, match=diagnosis):
        check_article_attention_fix(_article_fix(bug=bug))


def test_check_article_attention_fix_leaves_the_global_random_state_alone(capsys) -> None:
    state = torch.get_rng_state()
    check_article_attention_fix(_article_fix())
    assert torch.equal(torch.get_rng_state(), state)
    assert capsys.readouterr().out.count("passed") == 1
