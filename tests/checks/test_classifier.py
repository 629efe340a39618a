"""attention.checks.classifier (chapter 12): a right pooling passes, each mistake is named.

The checker draws fresh random batches on every call, so each mistake is checked several times.
"""

import pytest
import torch  # noqa: F401

from attention import mean_pool
from attention.checks import check_mean_pool

REPEATS = 5  # fresh draws per mistake


def diagnosis(check, fn) -> str:
    with pytest.raises(AssertionError) as info:
        check(fn)
    return str(info.value)


# ----------------------------------------------------------------------------- mean pooling


def test_check_mean_pool_passes_a_right_pooling(capsys):
    def mine(x, mask):
        m = mask.to(x.dtype)[..., None]
        return (x * m).sum(1) / m.sum(1).clamp(min=1)

    for _ in range(REPEATS):
        check_mean_pool(mine)
    assert capsys.readouterr().out.startswith("check_mean_pool: all 2 random batches passed")


def test_check_mean_pool_refuses_the_package_function():
    assert "your function called attention.mean_pool" in diagnosis(check_mean_pool, mean_pool)


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (lambda x, mask: x.mean(1), "the padding is averaged in"),
        (lambda x, mask: (x * mask[..., None]).sum(1) / x.shape[1], "divided by the padded length"),
        (lambda x, mask: (x * mask[..., None]).sum(1), "that is the sum of the real tokens"),
        (lambda x, mask: x[:, 0], "the vector at position 0"),
        (
            lambda x, mask: (
                (x * ~mask[..., None]).sum(1) / (~mask).sum(1, keepdim=True).clamp(min=1)
            ),
            "the mask polarity is inverted",
        ),
        (
            lambda x, mask: (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True),
            "a row with no real token gives NaN",
        ),
        (lambda x, mask: x.mean(-1), "a mean over the features"),
    ],
    ids=["padding-in", "padded-length", "sum", "cls", "inverted", "nan-row", "features"],
)
def test_check_mean_pool_names_the_mistake(mistake, expected):
    for _ in range(REPEATS):
        assert expected in diagnosis(check_mean_pool, mistake)
