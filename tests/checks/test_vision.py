"""The chapter 13 checker: a right patch embedding passes, each usual mistake is named."""

import pytest

from attention.checks.vision import check_patch_embedding


def patch_embedding(order=(0, 2, 4, 1, 3, 5), layout="tokens", with_bias=True):
    def fn(images, weight, bias, P):
        B, C, H, W = images.shape  # batch, channels, height, width
        D = weight.shape[0]
        x = images if order is None else images.reshape(B, C, H // P, P, W // P, P).permute(*order)
        x = x.reshape(B, -1, C * P * P)  # order=None: reshape alone, the usual first attempt
        out = x @ weight.reshape(D, -1).T + (bias if with_bias else 0)
        return out.transpose(1, 2) if layout == "conv" else out

    return fn


def test_patch_embedding_checker_passes_a_right_answer(capsys):
    check_patch_embedding(patch_embedding())
    assert "all 3 random cases" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fn", "diagnosis"),
    [
        (patch_embedding(order=(0, 2, 4, 3, 5, 1)), "channels last"),
        (patch_embedding(order=(0, 4, 2, 1, 3, 5)), "column by column"),
        (patch_embedding(order=(0, 2, 4, 1, 5, 3)), "column first"),
        (patch_embedding(with_bias=False), "bias is missing"),
        (patch_embedding(layout="conv"), "transpose to (B, N, D)"),
        (patch_embedding(order=None), "reshape alone"),
    ],
)
def test_patch_embedding_checker_names_the_mistake(fn, diagnosis):
    with pytest.raises(AssertionError, match=diagnosis.replace("(", r"\(").replace(")", r"\)")):
        check_patch_embedding(fn)
