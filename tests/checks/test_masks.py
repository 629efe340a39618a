"""attention.checks.masks (chapter 03): check_mask_conventions and check_decoder_mask pass correct
masks and give each usual mistake its diagnosis.

The checker draws fresh batches on every call, so each mistake is checked several times: the
diagnosis must hold on every draw, not only on a lucky one.
"""

from __future__ import annotations

import pytest
import torch

from attention import causal_mask, combine_masks, from_hf_attention_mask, invert_mask, padding_mask
from attention.checks import check_decoder_mask, check_mask_conventions

REPEATS = 5  # fresh draws per mistake


def learner_mask(
    *,
    combine: str = "and",
    causal: str = "tril",
    padding: str = "keys",
    invert: bool = False,
):
    """A learner's decoder mask, right by default, with one knob per usual mistake."""

    def decoder_mask(attention_mask):
        B, T = attention_mask.shape  # batch, tokens
        ones = torch.ones(T, T, dtype=torch.bool)
        tri = {"tril": ones.tril(), "triu": ones.triu(), "strict": ones.tril(-1), "none": ones}
        real = attention_mask == 1  # (B, T)
        if padding == "right":  # rebuilt from the lengths, as if every batch were right-padded
            real = padding_mask(attention_mask.sum(-1), T)
        keys = real[:, None, None, :]  # (B, 1, 1, T)
        rows = real[:, None, :, None]  # (B, 1, T, 1)
        pad = {
            "keys": keys,
            "right": keys,
            "queries": rows,
            "both": keys & rows,
            "none": torch.ones(B, 1, 1, T, dtype=torch.bool),
        }[padding]
        mask = tri[causal] & pad if combine == "and" else tri[causal] | pad
        return ~mask if invert else mask

    return decoder_mask


def diagnosis(fn) -> str:
    with pytest.raises(AssertionError) as info:
        check_decoder_mask(fn)
    message = str(info.value)
    assert message.startswith("check_decoder_mask failed on ")
    return message


@pytest.mark.parametrize(
    "fn",
    [
        learner_mask(),
        lambda am: causal_mask(am.shape[1]) & am.bool()[:, None, None, :],
        lambda am: causal_mask(am.shape[1])[None, None] & (am == 1)[:, None, None, :],
    ],
    ids=["inline", "bool-cast", "explicit-dims"],
)
def test_check_decoder_mask_passes_correct_masks_with_one_line(fn, capsys) -> None:
    state = torch.get_rng_state()
    for _ in range(REPEATS):
        assert check_decoder_mask(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS, "one line per successful check"
    assert lines[0].startswith("check_decoder_mask: all 3 cases passed")
    assert torch.equal(torch.get_rng_state(), state)  # notebooks' seeded numbers stay put


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (learner_mask(invert=True), "the mask is inverted"),
        (learner_mask(combine="or"), "combined with OR"),
        (learner_mask(padding="none"), "the padding is not masked"),
        (learner_mask(causal="none"), "the causal mask is missing"),
        (learner_mask(causal="triu"), "the causal mask points the wrong way"),
        (learner_mask(causal="strict"), "the diagonal is masked"),
        (learner_mask(padding="both"), "the pad queries' rows are masked as well"),
        (learner_mask(padding="right"), "the padding is assumed to be on the right"),
        (lambda am: causal_mask(am.shape[1]), "the same for every sequence"),
        (lambda am: am.bool()[:, None, None, :], "the causal mask is missing"),
    ],
    ids=[
        "inverted",
        "or",
        "no-padding",
        "no-causal",
        "triu",
        "strict-tril",
        "rows-and-keys",
        "right-padding-assumed",
        "causal-only-2d",
        "padding-only-4d",
    ],
)
def test_check_decoder_mask_names_the_mistake(mistake, expected: str) -> None:
    for _ in range(REPEATS):
        assert expected in diagnosis(mistake)


def test_check_decoder_mask_names_padding_on_the_queries() -> None:
    # Right-padded, masking the rows empties the pad queries (the same mask as rows and keys);
    # the left-padded batch tells the two apart. Either message names the rows.
    for _ in range(REPEATS):
        message = diagnosis(learner_mask(padding="queries"))
        assert "rows" in message and "keys (columns)" in message


def test_check_decoder_mask_explains_broadcast_against_queries() -> None:
    def broadcast(am):
        return causal_mask(am.shape[1]) & am.bool()  # (T, T) & (B, T): pairs b with query b

    for _ in range(REPEATS):
        message = diagnosis(broadcast)
        assert "must match the size of tensor" in message  # B != T: torch refuses
        assert "reshape it to (B, 1, 1, T)" in message


def test_check_decoder_mask_explains_silent_broadcast_when_b_equals_t() -> None:
    def broadcast_if_square(am):
        B, T = am.shape
        if B != T:  # pass the first case, so that the B == T case is reached
            return causal_mask(T) & am.bool()[:, None, None, :]
        return causal_mask(T) & am.bool()

    assert "pairs sequence b with query b" in diagnosis(broadcast_if_square)


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (lambda am: causal_mask(am.shape[1]) & am.bool()[:, None, :], "add the head dim"),
        (lambda am: (causal_mask(am.shape[1]) & am.bool()[:, None, None, :]).long(), "torch.int64"),
        (
            lambda am: torch.zeros(am.shape[0], 1, am.shape[1], am.shape[1]).masked_fill(
                ~(causal_mask(am.shape[1]) & am.bool()[:, None, None, :]), float("-inf")
            ),
            "an additive float mask",
        ),
        (lambda am: causal_mask(am.shape[1]).tolist(), "expected a tensor, got list"),
        (lambda am: am.bool()[:, None, None, :].expand(-1, 2, -1, -1), "expected a mask of shape"),
    ],
    ids=["3-d", "long", "additive", "list", "head-dim-2"],
)
def test_check_decoder_mask_reports_wrong_type_or_shape(mistake, expected: str) -> None:
    assert expected in diagnosis(mistake)


def test_check_decoder_mask_reports_an_exception_with_the_case() -> None:
    def fn(attention_mask):
        raise RuntimeError("not yet")

    message = diagnosis(fn)
    assert "failed on a right-padded batch (3, 8):" in message
    assert "your function raised RuntimeError: not yet" in message


def test_check_decoder_mask_draws_fresh_batches_and_needs_fully_masked_rows() -> None:
    seen = []

    def fn(attention_mask):
        seen.append(attention_mask.clone())
        return learner_mask()(attention_mask)

    check_decoder_mask(fn)
    check_decoder_mask(fn)
    assert len(seen) == 6 and all(s.dtype == torch.long for s in seen)
    assert any(not torch.equal(a, b) for a, b in zip(seen[:3], seen[3:], strict=True))
    for am in seen:
        assert (am == 0).any(), "every batch has padding"
    left = seen[2]
    assert (left[:, 0] == 0).any() and (left[:, -1] == 1).all(), "the third batch is left-padded"
    mask = learner_mask()(left)
    assert (~mask.any(dim=-1)).any(), "and so has queries with no real key"


def test_check_decoder_mask_does_not_trust_a_mutating_learner() -> None:
    def mutating(attention_mask):
        mask = learner_mask()(attention_mask)
        attention_mask.zero_()  # must not change what the checker compares against
        return mask

    check_decoder_mask(mutating)


# check_mask_conventions: correct conversions pass, each usual mistake is named ---------------


def additive(mask, fill=float("-inf")):
    """A learner's additive mask: 0 where ours is True, ``fill`` where it is False."""
    return torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, fill)


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: ~m,
        lambda m: additive(m),
        lambda m: additive(m, fill=-1e9),
        lambda m: additive(m, fill=-1e8),  # far below any real logit: fine
        lambda m: additive(m, fill=-1e5),
        lambda m: torch.zeros(m.shape).masked_fill(~m, torch.finfo(torch.float32).min),
    ],
)
def test_check_mask_conventions_accepts_correct_conversions(convert, capsys) -> None:
    state = torch.get_rng_state()
    check_mask_conventions(convert)
    assert "all 3 cases passed" in capsys.readouterr().out
    assert torch.equal(torch.get_rng_state(), state)  # notebooks' seeded numbers stay put


@pytest.mark.parametrize(
    ("convert", "diagnosis"),
    [
        (lambda m: m, r"the mask is not inverted"),
        (lambda m: m.clone(), r"the mask is not inverted"),
        (lambda m: (~m).long(), r"wrong dtype torch.int64"),
        (lambda m: (~m).to(torch.uint8), r"wrong dtype torch.uint8"),
        (lambda m: m.float(), r"a float mask of 0s and 1s"),
        (lambda m: (~m).float(), r"a float mask of 0s and 1s"),
        (lambda m: additive(~m), r"the additive mask is inverted"),
        (lambda m: torch.zeros(m.shape).masked_fill(~m, float("inf")), r"wrong sign"),
        (lambda m: additive(m, fill=-1e4), r"a fill of -10000 is within reach of real"),
        (lambda m: additive(m, fill=-1000.0), r"a fill of -1000 is within reach of real"),
        (lambda m: (~m)[None], r"expected the mask's shape"),
        (lambda m: (~m).tolist(), r"expected a tensor, got list"),
        (invert_mask, r"your function called attention.invert_mask; this exercise asks you"),
    ],
)
def test_check_mask_conventions_names_the_mistake(convert, diagnosis: str) -> None:
    with pytest.raises(AssertionError, match=diagnosis):
        check_mask_conventions(convert)


def test_check_decoder_mask_cannot_be_passed_with_the_package_helpers() -> None:
    def package(am):
        return combine_masks(causal_mask(am.shape[1]), key_padding=from_hf_attention_mask(am))

    with pytest.raises(AssertionError, match="your function called attention.from_hf_attention"):
        check_decoder_mask(package)
