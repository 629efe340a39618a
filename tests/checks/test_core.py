"""attention.checks.core (chapter 02): correct solutions pass, each usual mistake is named.

The checkers draw fresh random cases on every call, so each mistake is checked several times:
the diagnosis must hold on every draw, not only on a lucky one.
"""

import math

import pytest
import torch

from attention import scaled_dot_product_attention
from attention.checks import check_masked_softmax, check_scaled_dot_product_attention

REPEATS = 5  # fresh draws per mistake
NEG_INF = float("-inf")


# ----------------------------------------------------------------------------- learner's SDPA


def learner_sdpa(
    *,
    dim: int = -1,
    scale=lambda dk: 1 / math.sqrt(dk),
    mask_mode: str = "ok",
    fill: float = NEG_INF,
    softmax: bool = True,
    guard_empty_rows: bool = False,
    returns: str = "out_weights",
):
    """A learner's attention, right by default, with one knob per usual mistake."""

    def attention(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) * scale(q.shape[-1])
        keep = None
        if mask is not None and mask_mode in ("ok", "inverted"):
            keep = mask if mask_mode == "ok" else ~mask
            scores = scores.masked_fill(~keep, fill)
        weights = torch.softmax(scores, dim=dim) if softmax else scores
        if mask is not None and mask_mode == "after_softmax":
            weights = weights * mask
        if guard_empty_rows and keep is not None:
            weights = weights.masked_fill(~keep.any(dim=-1, keepdim=True), 0.0)
        out = weights @ v
        return {"out_weights": (out, weights), "out": out, "weights": weights}[returns]

    return attention


def sdpa_diagnosis(fn) -> str:
    with pytest.raises(AssertionError) as info:
        check_scaled_dot_product_attention(fn)
    return str(info.value)


@pytest.mark.parametrize(
    "fn",
    [
        learner_sdpa(),
        learner_sdpa(returns="out"),
        learner_sdpa(fill=-1e9),  # the Annotated Transformer's idiom is right too
        learner_sdpa(guard_empty_rows=True),
    ],
    ids=["reference-like", "returns-out-only", "fill-1e9", "guards-empty-rows"],
)
def test_check_sdpa_passes_correct_implementation_with_one_line(fn, capsys):
    for _ in range(REPEATS):
        assert check_scaled_dot_product_attention(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS, "one line per successful check"
    assert lines[0].startswith("check_scaled_dot_product_attention: all 5 random cases passed")


@pytest.mark.parametrize(
    ("mistake", "diagnosis"),
    [
        (learner_sdpa(dim=-2), "the softmax runs over the wrong axis"),
        (learner_sdpa(scale=lambda dk: 1.0), "the scores are not scaled"),
        (learner_sdpa(scale=lambda dk: 1 / dk), "scaled by 1/Dk; the right factor is 1/sqrt(Dk)"),
        (learner_sdpa(scale=math.sqrt), "multiplied by sqrt(Dk); divide by it instead"),
        (learner_sdpa(mask_mode="ignored"), "the mask is ignored"),
        (learner_sdpa(mask_mode="inverted"), "the mask polarity is inverted"),
        (learner_sdpa(mask_mode="after_softmax"), "the weights are zeroed after the softmax"),
        (learner_sdpa(returns="weights"), "that is the weights' shape: return weights @ v"),
        (learner_sdpa(softmax=False), "there is no softmax"),
    ],
    ids=[
        "softmax-dim-2",
        "no-scaling",
        "scale-1-over-dk",
        "scale-times-sqrt-dk",
        "mask-ignored",
        "mask-inverted",
        "zeroed-after-softmax",
        "returns-weights",
        "no-softmax",
    ],
)
def test_check_sdpa_names_the_mistake(mistake, diagnosis):
    for _ in range(REPEATS):
        message = sdpa_diagnosis(mistake)
        assert message.startswith("check_scaled_dot_product_attention failed on ")
        assert diagnosis in message


@pytest.mark.parametrize(
    "mistake",
    [
        learner_sdpa(mask_mode="inverted", fill=-1e9),
        learner_sdpa(mask_mode="inverted", guard_empty_rows=True),
    ],
    ids=["fill-1e9", "guards-empty-rows"],
)
def test_check_sdpa_names_inverted_mask_without_nan(mistake):
    # Regression: the inverted mask used to be named only when an inverted causal row gave NaN.
    assert "the mask polarity is inverted" in sdpa_diagnosis(mistake)


def test_check_sdpa_reports_wrong_weights_with_right_output():
    def fn(q, k, v, mask=None):
        out, weights = learner_sdpa()(q, k, v, mask)
        return out, weights.transpose(-2, -1)

    assert "the returned weights are not" in sdpa_diagnosis(fn)


def test_check_sdpa_reports_an_exception_with_the_case():
    def fn(q, k, v, mask=None):
        raise RuntimeError("shapes do not match")

    message = sdpa_diagnosis(fn)
    assert "failed on self-attention, q/k/v (2, 6, 8), no mask" in message
    assert "your function raised RuntimeError: shapes do not match" in message


def test_check_sdpa_reports_missing_return():
    def forgot_return(q, k, v, mask=None):
        learner_sdpa()(q, k, v, mask)

    assert "expected a floating-point tensor, got NoneType" in sdpa_diagnosis(forgot_return)


def test_check_sdpa_reports_one_tuple_return():
    # Regression: `return out,` used to crash the checker with IndexError.
    def trailing_comma(q, k, v, mask=None):
        out, _ = learner_sdpa()(q, k, v, mask)
        return (out,)

    assert "return out or (out, weights)" in sdpa_diagnosis(trailing_comma)


def test_check_sdpa_draws_fresh_cases_each_call():
    seen = []

    def fn(q, k, v, mask=None):
        seen.append(q.clone())
        return learner_sdpa()(q, k, v, mask)

    check_scaled_dot_product_attention(fn)
    check_scaled_dot_product_attention(fn)
    first, second = seen[: len(seen) // 2], seen[len(seen) // 2 :]
    assert len(first) == 5 and not torch.equal(first[0], second[0])


def test_check_sdpa_rejects_hard_coded_answer():
    q, k, v = (torch.randn(2, 6, 8, dtype=torch.float64) for _ in range(3))
    frozen = scaled_dot_product_attention(q, k, v)
    assert "failed on" in sdpa_diagnosis(lambda *args: frozen)


# ----------------------------------------------------------------------------- masked softmax


def keep_rows(weights, keep):
    return weights.masked_fill(~keep.any(dim=-1, keepdim=True), 0.0)


def softmax_ok(scores, mask):
    return keep_rows(torch.softmax(scores.masked_fill(~mask, NEG_INF), dim=-1), mask)


def softmax_naive_exp(scores, mask):
    e = torch.exp(scores) * mask
    return e / e.sum(dim=-1, keepdim=True)


def masked_softmax_diagnosis(fn) -> str:
    with pytest.raises(AssertionError) as info:
        check_masked_softmax(fn)
    return str(info.value)


@pytest.mark.parametrize(
    "fn",
    [
        softmax_ok,
        lambda s, m: torch.softmax(s.masked_fill(~m, NEG_INF), dim=-1).nan_to_num(0.0),
    ],
    ids=["guards-empty-rows", "nan-to-num"],
)
def test_check_masked_softmax_passes_correct_implementation_with_one_line(fn, capsys):
    for _ in range(REPEATS):
        assert check_masked_softmax(fn) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_masked_softmax: all 3 stages passed")


@pytest.mark.parametrize(
    ("mistake", "stage", "diagnosis"),
    [
        (lambda s, m: torch.softmax(s, dim=-1), "ordinary scores", "the mask is ignored"),
        (
            lambda s, m: keep_rows(torch.softmax(s.masked_fill(m, NEG_INF), dim=-1), ~m),
            "ordinary scores",
            "the mask polarity is inverted",
        ),
        (
            lambda s, m: torch.softmax(s.masked_fill(~m, NEG_INF), dim=-2).nan_to_num(0.0),
            "ordinary scores",
            "the softmax runs over dim=-2",
        ),
        (
            lambda s, m: torch.softmax(s, dim=-1) * m,
            "ordinary scores",
            "the weights are zeroed after the softmax",
        ),
        (softmax_naive_exp, "float32 scores of size ~1e4", "NaN or inf for large scores"),
        (
            lambda s, m: torch.softmax(s.masked_fill(~m, NEG_INF), dim=-1),
            "two rows fully masked",
            "a row whose mask is all False gives NaN",
        ),
        (
            lambda s, m: torch.softmax(s.masked_fill(~m, -1e9), dim=-1),
            "two rows fully masked",
            "masked entries have non-zero weight",
        ),
        (
            lambda s, m: torch.softmax(s + (~m) * NEG_INF, dim=-1),
            "ordinary scores",
            "(~mask) * -inf gives 0 * -inf = NaN",
        ),
        (
            lambda s, m: torch.softmax(s.masked_fill(~m, -1e4), dim=-1),
            "float32 scores of size ~1e4",
            "a row's kept entries all got weight 0",
        ),
    ],
    ids=[
        "mask-ignored",
        "mask-inverted",
        "wrong-axis",
        "zeroed-after-softmax",
        "naive-exp-overflow",
        "nan-on-fully-masked-rows",
        "fill-1e9-on-fully-masked-rows",
        "times-neg-inf-gives-nan",
        "fill-1e4-too-weak-for-1e4-scores",
    ],
)
def test_check_masked_softmax_names_the_mistake(mistake, stage, diagnosis):
    for _ in range(REPEATS):
        message = masked_softmax_diagnosis(mistake)
        assert message.startswith("check_masked_softmax failed on ")
        assert stage in message and diagnosis in message


def test_check_masked_softmax_names_wrong_axis_on_every_draw():
    # Regression: a column left all False by the random mask gave NaN over dim=-2, which used to
    # be blamed on exp overflow (about 6 calls in 10).
    def wrong_axis(scores, mask):  # the usual solution, with dim=-2 instead of dim=-1
        return keep_rows(torch.softmax(scores.masked_fill(~mask, NEG_INF), dim=-2), mask)

    for _ in range(20):  # P(all 20 draws avoid an all-False column) < 1e-8
        assert "the softmax runs over dim=-2" in masked_softmax_diagnosis(wrong_axis)


def test_check_masked_softmax_reports_wrong_shape():
    message = masked_softmax_diagnosis(lambda s, m: s.sum(-1))
    assert "expected weights of shape (2, 4, 7), got (2, 4)" in message


def test_check_masked_softmax_reports_rows_not_summing_to_one():
    message = masked_softmax_diagnosis(lambda s, m: softmax_ok(s, m) * 0.5)
    assert "rows with at least one kept entry must sum to 1" in message


def test_check_masked_softmax_does_not_let_learner_mutate_its_inputs():
    def mutating(scores, mask):
        out = softmax_ok(scores, mask)
        scores.zero_()
        mask.fill_(True)
        return out

    assert check_masked_softmax(mutating) is None  # passes: the checker hands over copies
