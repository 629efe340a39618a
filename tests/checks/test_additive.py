"""attention.checks.additive (chapter 01): correct solutions pass, each usual mistake is named.

The checkers draw fresh random cases on every call, so each mistake is checked several times:
the diagnosis must hold on every draw, not only on a lucky one.
"""

import pytest
import torch

from attention import additive_attention, count_flops
from attention.checks import check_additive_attention, check_additive_flops

REPEATS = 5  # fresh draws per mistake


def learner_additive(
    *, dim=-1, mask_mode="ok", tanh="inside", transposed=False, returns="both", scaled=False
):
    """A learner's additive attention, right by default, with one knob per usual mistake."""

    def attention(query, key, value, w_q, w_k, v_a, mask=None):
        wq, wk = (w_q.T, w_k.T) if transposed else (w_q, w_k)
        q, k = query @ wq.T, key @ wk.T
        pairs = q[..., :, None, :] + k[..., None, :, :]
        scores = {
            "inside": lambda: torch.tanh(pairs) @ v_a,
            "none": lambda: pairs @ v_a,
            "outside": lambda: torch.tanh(pairs @ v_a),
            "separate": lambda: (
                (torch.tanh(q)[..., :, None, :] + torch.tanh(k)[..., None, :, :]) @ v_a
            ),
        }[tanh]()
        if scaled:  # the dot product's 1/sqrt(d_k), carried over by mistake
            scores = scores / v_a.shape[0] ** 0.5
        if mask is not None and mask_mode in ("ok", "inverted", "zero"):
            keep = mask if mask_mode != "inverted" else ~mask
            scores = scores.masked_fill(~keep, 0.0 if mask_mode == "zero" else float("-inf"))
        weights = torch.softmax(scores, dim=dim)
        if mask is not None and mask_mode == "after_softmax":
            weights = weights * mask
        out = weights @ value
        return {"both": (out, weights), "out": out}[returns]

    return attention


def diagnosis(check, fn) -> str:
    with pytest.raises(AssertionError) as info:
        check(fn)
    return str(info.value)


@pytest.mark.parametrize(
    "fn", [learner_additive(), learner_additive(returns="out")], ids=["reference-like", "out-only"]
)
def test_check_additive_passes_correct_implementation_with_one_line(fn, capsys):
    for _ in range(REPEATS):
        assert check_additive_attention(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_additive_attention: all 4 random cases passed")


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (learner_additive(dim=-2), "the softmax runs over the wrong axis"),
        (learner_additive(tanh="none"), "there is no tanh"),
        (learner_additive(tanh="outside"), "the tanh is applied after v_a"),
        (learner_additive(tanh="separate"), "the tanh is applied to each projection separately"),
        (learner_additive(transposed=True), "the weight matrices are transposed"),
        (learner_additive(mask_mode="ignored"), "the mask is ignored"),
        (learner_additive(mask_mode="inverted"), "the mask polarity is inverted"),
        (learner_additive(mask_mode="after_softmax"), "the weights are zeroed after the softmax"),
        (learner_additive(mask_mode="zero"), "the masked scores are set to 0"),
        (learner_additive(scaled=True), "the scores are divided by sqrt(Dh)"),
    ],
    ids=[
        "axis",
        "no-tanh",
        "tanh-outside",
        "tanh-separate",
        "transposed",
        "mask-ignored",
        "mask-inverted",
        "mask-after-softmax",
        "mask-zero",
        "scaled",
    ],  # fmt: skip
)
def test_check_additive_names_the_mistake(mistake, expected):
    for _ in range(REPEATS):
        assert expected in diagnosis(check_additive_attention, mistake)


def test_check_additive_reports_wrong_shape_and_weights():
    def returns_weights(*args):
        return learner_additive()(*args)[1]

    assert "that is the weights' shape" in diagnosis(check_additive_attention, returns_weights)

    def wrong_weights(*args):
        out, weights = learner_additive()(*args)
        return out, weights.mT

    assert "the returned weights are not" in diagnosis(check_additive_attention, wrong_weights)


def test_check_additive_inverted_mask_with_nan_is_named():
    # inverting a padding mask leaves some rows with no key: NaN
    message = diagnosis(check_additive_attention, learner_additive(mask_mode="inverted"))
    assert "inverted" in message or "NaN" in message


# ----------------------------------------------------------------------------- FLOPs


def right_flops(T, S, Dq, Dk, Dh, Dv):
    return 2 * T * Dq * Dh + 2 * S * Dk * Dh + 2 * T * S * Dh + 2 * T * S * Dv


def test_additive_flops_reference_formula_matches_the_counter():
    gen = torch.Generator().manual_seed(0)
    for T, S, Dq, Dk, Dh, Dv in [(3, 5, 4, 6, 7, 2), (8, 2, 3, 3, 5, 9)]:
        args = [torch.randn(*s, generator=gen) for s in
                [(T, Dq), (S, Dk), (S, Dv), (Dh, Dq), (Dh, Dk), (Dh,)]]  # fmt: skip
        with torch.no_grad():
            assert count_flops(additive_attention, *args) == right_flops(T, S, Dq, Dk, Dh, Dv)


def test_check_additive_flops_passes_the_formula(capsys):
    for _ in range(REPEATS):
        check_additive_flops(right_flops)
    assert capsys.readouterr().out.startswith("check_additive_flops: all 3 sets of sizes passed")


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (lambda *a: right_flops(*a) // 2, "you counted multiply-adds"),
        (
            lambda T, S, Dq, Dk, Dh, Dv: (
                right_flops(T, S, Dq, Dk, Dh, Dv) - 2 * T * Dq * Dh - 2 * S * Dk * Dh
            ),
            "the projections W_q q and W_k k are missing",
        ),
        (
            lambda T, S, Dq, Dk, Dh, Dv: right_flops(T, S, Dq, Dk, Dh, Dv) - 2 * T * S * Dh,
            "the product of each hidden vector with v_a is missing",
        ),
        (
            lambda T, S, Dq, Dk, Dh, Dv: right_flops(T, S, Dq, Dk, Dh, Dv) - 2 * T * S * Dv,
            "the weighted sum of the values is missing",
        ),
        (
            lambda T, S, Dq, Dk, Dh, Dv: right_flops(T, S, Dq, Dk, Dh, Dv) + 2 * T * S * Dh,
            "you counted the element-wise additions and tanh",
        ),
        (
            lambda T, S, Dq, Dk, Dh, Dv: (
                2 * T * S * (Dq + Dk) * Dh + 2 * T * S * Dh + 2 * T * S * Dv
            ),
            "the projections are counted once per query–key pair",
        ),
        (lambda *a: right_flops(*a) + 0.5, "not a whole number of FLOPs"),
        (lambda *a: str(right_flops(*a)), "expected an int"),
    ],
    ids=[
        "multiply-adds",
        "no-projections",
        "no-scores",
        "no-weighted-sum",
        "element-wise",
        "per-pair-projections",
        "fraction",
        "string",
    ],  # fmt: skip
)
def test_check_additive_flops_names_the_mistake(mistake, expected):
    for _ in range(REPEATS):
        assert expected in diagnosis(check_additive_flops, mistake)


def test_check_additive_flops_refuses_the_counter():
    def counted(T, S, Dq, Dk, Dh, Dv):
        args = [torch.randn(*s) for s in [(T, Dq), (S, Dk), (S, Dv), (Dh, Dq), (Dh, Dk), (Dh,)]]
        return count_flops(additive_attention, *args)

    assert "your function called attention.count_flops" in diagnosis(check_additive_flops, counted)
