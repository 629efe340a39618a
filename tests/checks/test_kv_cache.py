"""check_cached_attention_step (chapter 08): right steps pass, each usual mistake is named.

The checker draws fresh cases on every call, so each mistake is checked several times: the
diagnosis must hold on every draw, not only on a lucky one.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attention.checks import check_cached_attention_step

REPEATS = 5  # fresh draws per mistake


def learner_step(
    *,
    mask: str = "none",
    cat_dim: int = 2,
    append: str = "before",
    scale: str = "head",
    softmax_dim: int = -1,
    returned: str = "ok",
):
    """A learner's cached attention step, right by default, with one knob per usual mistake."""

    def step(q, k_new, v_new, k_cache, v_cache):
        k_all = torch.cat([k_cache, k_new], dim=cat_dim)  # (B, H, P + 1, Dh) when dim=2
        v_all = torch.cat([v_cache, v_new], dim=cat_dim)
        k_used, v_used = {
            "before": (k_all, v_all),
            "after": (k_cache, v_cache),  # attends first, appends afterwards
            "new_only": (k_new, v_new),
        }[append]
        S, Dh = k_used.shape[-2], q.shape[-1]
        factor = {
            "head": 1 / math.sqrt(Dh),
            "length": 1 / math.sqrt(S),
            "old_length": 1 / math.sqrt(max(k_cache.shape[-2], 1)),
            "none": 1.0,
        }[scale]
        scores = q @ k_used.transpose(-2, -1) * factor  # (B, H, 1, S)
        if mask == "top_left":  # a causal mask built for one query: keeps key 0 alone
            keep = torch.ones(1, S, dtype=torch.bool).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        weights = torch.softmax(scores, dim=softmax_dim)
        out = weights @ v_used
        if returned == "old":
            return out, k_cache, v_cache
        if returned == "prepended":
            return out, torch.cat([k_new, k_cache], dim=2), torch.cat([v_new, v_cache], dim=2)
        if returned == "swapped":
            return out, v_all, k_all
        if returned == "pair":
            return out, k_all
        return out, k_all, v_all

    return step


def diagnosis(fn) -> str:
    with pytest.raises(AssertionError) as info:
        check_cached_attention_step(fn)
    message = str(info.value)
    assert message.startswith("check_cached_attention_step failed on ")
    return message


def _float32_step(q, k_new, v_new, k_cache, v_cache):
    out, k, v = learner_step()(q, k_new, v_new, k_cache, v_cache)
    return out.float(), k, v  # float32 out is judged on its values


def test_check_cached_step_refuses_torch_and_package_attention() -> None:
    def torch_step(q, k_new, v_new, k_cache, v_cache):
        k, v = torch.cat([k_cache, k_new], dim=-2), torch.cat([v_cache, v_new], dim=-2)
        return F.scaled_dot_product_attention(q, k, v), k, v

    with pytest.raises(AssertionError, match="called torch.nn.functional.scaled_dot_product"):
        check_cached_attention_step(torch_step)


@pytest.mark.parametrize("fn", [learner_step(), _float32_step], ids=["inline", "float32-out"])
def test_check_cached_attention_step_passes_right_steps_with_one_line(fn, capsys) -> None:
    state = torch.get_rng_state()
    for _ in range(REPEATS):
        assert check_cached_attention_step(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS, "one line per successful check"
    assert lines[0].startswith("check_cached_attention_step: all 4 cases passed")
    assert torch.equal(torch.get_rng_state(), state)  # notebooks' seeded numbers stay put


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (learner_step(mask="top_left"), "only the first key is attended"),
        (learner_step(append="after"), "attends to the old cache only"),
        (learner_step(append="new_only"), "attends only to its own key"),
        (learner_step(scale="length"), "scaled by 1/sqrt(S)"),
        (learner_step(scale="old_length"), "scaled by 1/sqrt(P)"),
        (learner_step(scale="none"), "the scores are not scaled"),
        (learner_step(softmax_dim=-2), "the softmax runs over the queries"),
        (learner_step(returned="old"), "is the old cache"),
        (learner_step(returned="prepended"), "the new entry is put first"),
        (learner_step(returned="swapped"), "k_cache and v_cache are swapped"),
        (learner_step(returned="pair"), "expected (out, k_cache, v_cache), got a tuple of 2"),
    ],
    ids=[
        "top-left-causal-mask",
        "attend-before-append",
        "new-key-only",
        "scale-by-cache-length",
        "scale-by-old-length",
        "no-scale",
        "softmax-over-queries",
        "stale-cache",
        "prepended",
        "swapped",
        "two-items",
    ],
)
def test_check_cached_attention_step_names_the_mistake(mistake, expected: str) -> None:
    for _ in range(REPEATS):
        assert expected in diagnosis(mistake)


@pytest.mark.parametrize("cat_dim", [1, 3, -1, 0])
def test_check_cached_attention_step_explains_a_cat_along_the_wrong_dim(cat_dim: int) -> None:
    message = diagnosis(learner_step(cat_dim=cat_dim))
    assert "your function raised RuntimeError" in message
    assert "joins it along the sequence axis, dim=2" in message


def test_check_cached_attention_step_reports_the_learners_error_and_line() -> None:
    def unfinished(q, k_new, v_new, k_cache, v_cache):
        raise NotImplementedError("write the cached step here")

    message = diagnosis(unfinished)
    assert "a cache of 5 tokens" in message  # the first case, described without random values
    assert "NotImplementedError: write the cached step here" in message
    assert "of unfinished()" in message


def test_check_cached_attention_step_checks_a_whole_decode_end_to_end() -> None:
    def forgetful(q, k_new, v_new, k_cache, v_cache):
        # right on the single steps; in the decode (B = H = 2) it keeps only the newest token
        out, k, v = learner_step()(q, k_new, v_new, k_cache, v_cache)
        if tuple(q.shape[:2]) == (2, 2):
            return out, k[:, :, -1:], v[:, :, -1:]
        return out, k, v

    message = diagnosis(forgetful)
    assert "7-step decode" in message and "differ from causal attention" in message
    assert "first at step 2" in message  # step 1 still sees tokens 0 and 1


def test_check_cached_attention_step_does_not_let_inputs_be_modified() -> None:
    def in_place(q, k_new, v_new, k_cache, v_cache):
        out, k, v = learner_step()(q, k_new, v_new, k_cache, v_cache)
        q.zero_()  # vandalises its own copy only
        return out, k, v

    check_cached_attention_step(in_place)
