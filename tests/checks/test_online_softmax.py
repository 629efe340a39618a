"""Chapter 11's online softmax checker: a correct update passes, each usual mistake is named.

The checker draws fresh cases on every call, so each mistake is checked several times: the
diagnosis must hold on every draw, not only on a lucky one.
"""

from __future__ import annotations

import pytest
import torch

from attention import online_softmax_update
from attention.checks import check_online_softmax_update

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


def test_learner_exception_is_reported_with_its_line():
    def broken(state, scores, v):
        return scores @ state.acc  # (2, 6, 5) @ (2, 6, 3): wrong shapes

    message = diagnosis(check_online_softmax_update, broken)
    assert "your function raised RuntimeError" in message
    assert "scores @ state.acc" in message


def test_checkers_draw_fresh_cases():
    seen = []

    def spy(state, scores, v):
        seen.append(scores.clone())
        return learner_update()(state, scores, v)

    check_online_softmax_update(spy)
    check_online_softmax_update(spy)
    half = len(seen) // 2
    assert not torch.equal(seen[0], seen[half])


def test_the_package_version_is_refused():
    with pytest.raises(AssertionError, match="your function called attention.online_softmax_upd"):
        check_online_softmax_update(online_softmax_update)
