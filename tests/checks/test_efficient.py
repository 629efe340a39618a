"""Chapter 11's tiled-attention checker: a tiled answer passes, each usual mistake is named, and
an answer that builds the (T, S) score matrix, or loops over blocks of queries without the loop
over keys, fails however right its output.

The checker draws fresh cases on every call, so each mistake is checked several times.
"""

from __future__ import annotations

import math

import pytest
import torch

from attention import flash_attention, triton_flash_attention
from attention.checks import check_flash_attention

from .test_online_softmax import REPEATS, diagnosis, learner_update


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


def blocks_of_queries_too(q, k, v, block_size):
    """Right: FlashAttention-2's schedule, blocks of queries outside the loop over key blocks."""
    rows = [
        learner_flash()(q[..., i : i + block_size, :], k, v, block_size)
        for i in range(0, q.shape[-2], block_size)
    ]
    return torch.cat(rows, dim=-2)


def keys_scaled_and_transposed_first(q, k, v, block_size):
    """Right: K scaled and transposed once into a (..., Dk, S) copy, then sliced by blocks."""
    kt = (k / math.sqrt(q.shape[-1])).transpose(-2, -1).contiguous()  # (..., Dk, S)
    update = learner_update(None)
    m = torch.full(q.shape[:-1], -math.inf, dtype=q.dtype)
    state = (m, torch.zeros_like(m), q.new_zeros(*q.shape[:-1], v.shape[-1]))
    for j in range(0, k.shape[-2], block_size):
        state = update(state, q @ kt[..., j : j + block_size], v[..., j : j + block_size, :])
    return state[2] / state[1][..., None]


@pytest.mark.parametrize(
    ("fn", "repeats"),
    [(learner_flash(), REPEATS), (blocks_of_queries_too, 2), (keys_scaled_and_transposed_first, 2)],
    ids=["learner", "blocks of queries too", "K scaled and transposed first"],
)
def test_correct_tiled_attention_passes(fn, repeats, capsys):
    for _ in range(repeats):
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
            "check_flash_attention failed on q (2, 3, 48, 5), k (2, 3, 40, 5)"
        )
        assert "as many as the whole (..., T, S) = (..., 48, 40) score matrix" in message
        assert "Its output is right" in message and "one (..., T, block_size) tile" in message


def blocks_of_queries_only(q, k, v, block_size):
    """Right output, no key loop: each block of queries takes the softmax over all S keys."""
    scale = 1 / math.sqrt(q.shape[-1])
    rows = [
        torch.softmax(q[..., i : i + block_size, :] @ k.transpose(-2, -1) * scale, dim=-1) @ v
        for i in range(0, q.shape[-2], block_size)
    ]
    return torch.cat(rows, dim=-2)


def one_query_at_a_time(q, k, v, block_size):
    """Right output, no key loop: one query at a time, a whole row of S scores each."""
    return blocks_of_queries_only(q, k, v, 1)


@pytest.mark.parametrize("fn", [blocks_of_queries_only, one_query_at_a_time])
def test_an_answer_without_the_loop_over_keys_fails_however_right(fn):
    message = diagnosis(check_flash_attention, fn)
    assert message.startswith("check_flash_attention failed on q (2, 3, 48, 5), k (2, 3, 40, 5)")
    assert "scores of some queries against all S = 40 keys at once" in message
    assert "Its output is right" in message and "Loop over blocks of block_size keys" in message


def test_wrong_output_shape_is_named():
    message = diagnosis(check_flash_attention, lambda q, k, v, b: q)
    assert "wrong output shape (2, 7, 4), expected (2, 7, 3) = (..., T, Dv)" in message


def test_the_package_versions_are_refused():
    with pytest.raises(AssertionError, match="your function called attention.flash_attention"):
        check_flash_attention(lambda q, k, v, b: flash_attention(q, k, v, block_size=b))
    with pytest.raises(AssertionError, match="called attention.triton_flash_attention"):
        check_flash_attention(lambda q, k, v, b: triton_flash_attention(q, k, v))
