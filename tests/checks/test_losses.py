"""attention.checks.losses (chapter 07): check_masked_cross_entropy names each usual mistake."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attention.checks import check_masked_cross_entropy


def _ce(logits, targets, ignore_index=None, label_smoothing=0.0, reduction="mean"):
    """F.cross_entropy's semantics written out: the checker refuses F.cross_entropy itself."""
    lp = torch.log_softmax(logits, -1)
    keep = (
        torch.ones_like(targets, dtype=torch.bool)
        if ignore_index is None
        else targets != ignore_index
    )
    nll = -lp.gather(-1, targets.masked_fill(~keep, 0)[..., None]).squeeze(-1)
    loss = torch.where(keep, (1 - label_smoothing) * nll - label_smoothing * lp.mean(-1), 0.0)
    return loss.sum() if reduction == "sum" else loss.sum() / keep.sum()


def masked_cross_entropy(logits, targets, pad_id, eps):
    """A learner's correct loss."""
    return _ce(logits, targets, ignore_index=pad_id, label_smoothing=eps)


def test_the_written_out_reference_equals_f_cross_entropy() -> None:
    logits, targets = torch.randn(2, 5, 7, dtype=torch.float64), torch.randint(0, 7, (2, 5))
    targets[0, 3:] = 2  # pads
    ref = F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=2, label_smoothing=0.1
    )
    torch.testing.assert_close(masked_cross_entropy(logits, targets, 2, 0.1), ref)


def _per_token(logits, targets, pad_id, eps, smooth_classes="all"):
    lp = torch.log_softmax(logits, -1)
    safe = targets.masked_fill(targets == pad_id, 0)
    nll = -lp.gather(-1, safe[..., None]).squeeze(-1)
    if smooth_classes == "no_pad":  # the Annotated Transformer's distribution
        others = torch.ones_like(lp).scatter(-1, safe[..., None], 0.0)
        others[..., pad_id] = 0.0
        return (1 - eps) * nll - eps * (lp * others).sum(-1) / (lp.shape[-1] - 2)
    return (1 - eps) * nll - eps * lp.mean(-1)


def _keep(targets, pad_id):
    return (targets != pad_id).to(torch.float64)


MISTAKES = {
    "averaging over pads": lambda lg, t, p, e: _ce(lg, t, label_smoothing=e),
    "divides by all B\\*T positions": lambda lg, t, p, e: (
        (_per_token(lg, t, p, e) * _keep(t, p)).sum() / t.numel()
    ),
    "sum instead of mean": lambda lg, t, p, e: _ce(
        lg, t, ignore_index=p, label_smoothing=e, reduction="sum"
    ),
    "averaged each sequence": lambda lg, t, p, e: (
        (_per_token(lg, t, p, e) * _keep(t, p)).sum(1) / _keep(t, p).sum(1)
    ).mean(),
    "pad id is hard-coded as 0": lambda lg, t, p, e: _ce(lg, t, ignore_index=0, label_smoothing=e),
    "label_smoothing is ignored": lambda lg, t, p, e: _ce(lg, t, ignore_index=p),
    "smoothing over the pad positions": lambda lg, t, p, e: (
        (
            (1 - e) * _per_token(lg, t, p, 0.0) * _keep(t, p)
            - e * torch.log_softmax(lg, -1).mean(-1)
        ).sum()
        / _keep(t, p).sum()
    ),
    "left the pad class out of the smoothing": lambda lg, t, p, e: (
        (_per_token(lg, t, p, e, "no_pad") * _keep(t, p)).sum() / _keep(t, p).sum()
    ),
    "you shifted the targets, but they are already aligned": lambda lg, t, p, e: (
        masked_cross_entropy(lg[:, :-1], t[:, 1:], p, e)
    ),
    "logits are used as log-probabilities": lambda lg, t, p, e: (
        (-lg.gather(-1, t.clamp(min=0)[..., None]).squeeze(-1) * _keep(t, p)).sum()
        / _keep(t, p).sum()
    ),
}


def test_correct_loss_passes(capsys) -> None:
    check_masked_cross_entropy(masked_cross_entropy)
    check_masked_cross_entropy(
        lambda logits, tokens, p, e: masked_cross_entropy(logits[:, :-1], tokens[:, 1:], p, e),
        shift=True,
    )
    out = capsys.readouterr().out
    assert out.count("check_masked_cross_entropy: all 4 random cases passed") == 2


def test_pytorch_reference_is_refused() -> None:
    with pytest.raises(AssertionError, match="called torch.nn.functional.cross_entropy"):
        check_masked_cross_entropy(
            lambda lg, t, p, e: F.cross_entropy(lg.mT, t, ignore_index=p, label_smoothing=e)
        )


@pytest.mark.parametrize("expected", list(MISTAKES))
def test_each_usual_mistake_is_named(expected: str) -> None:
    with pytest.raises(AssertionError, match=expected):
        check_masked_cross_entropy(MISTAKES[expected])


def test_forgetting_to_shift_is_named() -> None:
    with pytest.raises(AssertionError, match="you forgot to shift the targets"):
        check_masked_cross_entropy(masked_cross_entropy, shift=True)
    with pytest.raises(AssertionError, match="you shifted the wrong way"):
        check_masked_cross_entropy(
            lambda lg, t, p, e: masked_cross_entropy(lg[:, 1:], t[:, :-1], p, e), shift=True
        )


def test_a_gradient_at_pad_positions_is_caught() -> None:
    def leaky(logits, targets, pad_id, eps):
        pads = (targets == pad_id)[..., None]
        leak = (logits * pads).sum() - (logits * pads).sum().detach()  # zero value, grad 1
        return masked_cross_entropy(logits, targets, pad_id, eps) + leak

    with pytest.raises(AssertionError, match="pad positions get a gradient"):
        check_masked_cross_entropy(leaky)


def test_detached_wrong_shape_and_raising_functions_are_reported() -> None:
    with pytest.raises(AssertionError, match="not connected to the logits"):
        check_masked_cross_entropy(
            lambda lg, t, p, e: torch.tensor(masked_cross_entropy(lg, t, p, e).item())
        )
    with pytest.raises(AssertionError, match=r"expected a scalar tensor, got \(3, 6\)"):
        check_masked_cross_entropy(lambda lg, t, p, e: lg.sum(-1))
    with pytest.raises(AssertionError, match="your function raised RuntimeError: boom"):
        check_masked_cross_entropy(lambda lg, t, p, e: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(AssertionError, match="the loss is nan"):
        check_masked_cross_entropy(lambda lg, t, p, e: torch.tensor(float("nan")))


@pytest.mark.parametrize("shift", [False, True])
def test_stub_failure_and_success_messages_are_the_same_every_run(shift: bool, capsys) -> None:
    """A notebook stores both messages and nbval compares them, so neither may vary by run."""

    def stub(logits, targets, pad_id, eps):
        raise NotImplementedError("write it")

    def right(logits, tokens, pad_id, eps):
        if shift:
            logits, tokens = logits[:, :-1], tokens[:, 1:]
        return masked_cross_entropy(logits, tokens, pad_id, eps)

    messages = set()
    for _ in range(3):
        with pytest.raises(AssertionError) as caught:
            check_masked_cross_entropy(stub, shift=shift)
        messages.add(str(caught.value))
        check_masked_cross_entropy(right, shift=shift)
    assert len(messages) == 1, messages
    assert "lengths [6, 3, 1]" in messages.pop()
    assert len(set(capsys.readouterr().out.splitlines())) == 1
