"""Chapter 11 checkers: correct solutions pass, and each usual mistake gets its own diagnosis.

The checkers draw fresh cases on every call, so each mistake is checked several times: the
diagnosis must hold on every draw, not only on a lucky one.
"""

from __future__ import annotations

import math

import pytest
import torch

from attention import flash_attention, online_softmax_update
from attention.checks import check_flash_attention, check_online_softmax_update

REPEATS = 5  # fresh draws per mistake


def learner_update(mistake: str | None = None):
    """A learner's online softmax update, right by default, with one knob per usual mistake."""

    def update(state, scores, v):
        m, l_sum, acc = state
        m_blk = scores.amax(dim=-1)
        m_new = m_blk if mistake == "block_max" else torch.maximum(m, m_blk)
        alpha = torch.exp(m_new - m if mistake == "inverted" else m - m_new)
        if mistake == "no_rescale":
            alpha = torch.ones_like(alpha)
        p = torch.exp(scores - m_new[..., None])
        if mistake in ("no_max", "no_max_rescaled"):
            p = torch.exp(scores)
        if mistake == "no_max":
            alpha = torch.ones_like(alpha)
        l_new = l_sum * alpha + p.sum(dim=-1)
        acc_new = acc * alpha[..., None] + p @ v
        if mistake == "divide_early":
            acc_new = acc_new / l_new[..., None]
        if mistake == "returns_two":
            return m_new, acc_new
        return m_new, l_new, acc_new

    return update


def learner_flash(mistake: str | None = None, *, init: float = -math.inf):
    """A learner's tiled attention over key blocks, right by default, with one mistake knob."""
    update = learner_update(mistake if mistake != "skip_last" else None)

    def attention(q, k, v, block_size):
        scores_scale = 1 / math.sqrt(q.shape[-1])
        m = torch.full(q.shape[:-1], init, dtype=q.dtype)
        state = (m, torch.zeros_like(m), q.new_zeros(*q.shape[:-1], v.shape[-1]))
        S = k.shape[-2]
        stop = S // block_size * block_size if mistake == "skip_last" else S
        for j in range(0, stop, block_size):
            s = q @ k[..., j : j + block_size, :].transpose(-2, -1) * scores_scale
            state = update(state, s, v[..., j : j + block_size, :])
        m, l_sum, acc = state
        return acc if mistake == "divide_early" else acc / l_sum[..., None]

    return attention


def diagnosis(check, fn) -> str:
    with pytest.raises(AssertionError) as info:
        check(fn)
    return str(info.value)


@pytest.mark.parametrize("fn", [learner_update()])
def test_correct_update_passes(fn, capsys):
    for _ in range(REPEATS):
        check_online_softmax_update(fn)
    assert "both stages passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        ("no_rescale", "are not rescaled: when the maximum grows"),
        ("block_max", "the new block's own maximum is used"),
        ("inverted", "the rescaling factor is inverted"),
        ("divide_early", "divided by the sum too early"),
        ("no_max", "without subtracting the running max"),
        ("no_max_rescaled", "without subtracting the running max"),
        ("returns_two", "return the new state as a tuple (row_max, row_sum, acc)"),
    ],
)
def test_update_mistakes_are_named(mistake, expected):
    for _ in range(REPEATS):
        message = diagnosis(check_online_softmax_update, learner_update(mistake))
        assert expected in message
        assert message.startswith("check_online_softmax_update failed on ")


@pytest.mark.parametrize(
    "fn",
    [learner_flash()],
    ids=["learner"],
)
def test_correct_tiled_attention_passes(fn, capsys):
    for _ in range(REPEATS):
        check_flash_attention(fn)
    assert "all 5 random cases passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(mistake="no_rescale"), "are not rescaled"),
        (dict(mistake="divide_early"), "divided by the sum too early"),
        (dict(init=0.0), "the initial running maximum is wrong: start from m = -inf"),
        (dict(mistake="skip_last"), "the last, shorter block of keys is skipped"),
        (dict(mistake="inverted"), "the rescaling factor is inverted"),
        (dict(mistake="block_max"), "exp overflowed"),
    ],
)
def test_tiled_attention_mistakes_are_named(kwargs, expected):
    for _ in range(REPEATS):
        assert expected in diagnosis(check_flash_attention, learner_flash(**kwargs))


def test_learner_exception_is_reported_with_its_line():
    def broken(state, scores, v):
        return scores @ state.acc  # (2, 6, 5) @ (2, 6, 3): wrong shapes

    message = diagnosis(check_online_softmax_update, broken)
    assert "your function raised RuntimeError" in message
    assert "scores @ state.acc" in message


def materialised(q, k, v, block_size):
    """Right output, wrong algorithm: the whole (T, S) matrix at once, no tiles."""
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def tiles_then_concatenated(q, k, v, block_size):
    """Right output, tiles computed one by one but all kept and joined into (T, S)."""
    tiles = [
        q @ k[..., j : j + block_size, :].transpose(-2, -1)
        for j in range(0, k.shape[-2], block_size)
    ]
    weights = torch.softmax(torch.cat(tiles, dim=-1) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v


@pytest.mark.parametrize("fn", [materialised, tiles_then_concatenated])
def test_an_answer_that_builds_the_score_matrix_fails_however_right(fn):
    for _ in range(2):
        message = diagnosis(check_flash_attention, fn)
        assert message.startswith(
            "check_flash_attention failed on q (2, 3, 48, 8), k (2, 3, 40, 8)"
        )
        assert "as many as the whole (..., T, S) = (..., 48, 40) score matrix" in message
        assert "Its output is right" in message and "one (..., T, block_size) tile" in message


def test_wrong_output_shape_is_named():
    message = diagnosis(check_flash_attention, lambda q, k, v, b: q)
    assert "expected shape (2, 7, 3), got (2, 7, 4)" in message


def test_checkers_draw_fresh_cases():
    seen = []

    def spy(state, scores, v):
        seen.append(scores.clone())
        return learner_update()(state, scores, v)

    check_online_softmax_update(spy)
    check_online_softmax_update(spy)
    half = len(seen) // 2
    assert not torch.equal(seen[0], seen[half])


def test_the_package_versions_are_refused():
    with pytest.raises(AssertionError, match="your function called attention.online_softmax_upd"):
        check_online_softmax_update(online_softmax_update)
    with pytest.raises(AssertionError, match="your function called attention.flash_attention"):
        check_flash_attention(lambda q, k, v, b: flash_attention(q, k, v, block_size=b))
