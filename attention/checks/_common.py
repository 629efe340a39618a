"""What every checker shares. A checker draws fresh cases (``_generator``), calls the learner
under the reference guard (``_call``), validates the result (``_tensor``), compares it with the
reference (``_close``), names the mistake from its table (``_first_match``) and raises
``_fail(check, case, diagnosis)``, a ``CheckFailed`` that IPython shows without a traceback."""

from __future__ import annotations

import numbers
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from ._guard import forbidden_calls

_ATOL, _RTOL = 1e-6, 1e-5


class CheckFailed(AssertionError):
    """A checker's verdict: the case that failed and the likely mistake, in one message. IPython
    (Jupyter, Colab, stored outputs) shows ``_render_traceback_()``, the diagnosis lines alone,
    instead of a traceback: no frame, no path."""

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


@dataclass
class _Case:
    """One random test case: its inputs and a description used in failure messages."""

    description: str
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    mask: torch.Tensor | None = None


def _generator() -> torch.Generator:
    """Return a freshly seeded CPU generator, so each check sees new cases."""
    gen = torch.Generator()
    gen.seed()
    return gen


def _randn(gen: torch.Generator, *shape: int, std: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64) * std


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


def _random_mask(gen: torch.Generator, *shape: int, cover_columns: bool = False) -> torch.Tensor:
    """A random bool mask in which every row has a True and a False (and, with ``cover_columns``,
    every column a True, so that a softmax over the wrong axis stays finite, recognisable)."""
    cols = shape[-1]
    while True:
        mask = torch.rand(*shape, generator=gen) < 0.5
        keep = torch.randint(0, cols, (*shape[:-1], 1), generator=gen)
        drop = (keep + torch.randint(1, cols, keep.shape, generator=gen)) % cols
        mask.scatter_(-1, keep, True)
        mask.scatter_(-1, drop, False)
        if not cover_columns or mask.any(dim=-2).all():
            return mask


def _fail(check: str, case: str, message: str) -> CheckFailed:
    return CheckFailed(f"{check} failed on {case}:\n  {message}")


def _call(check: str, case: str, fn: Callable, *args, **kwargs):
    """Call the learner's function under the reference guard; report what it raised with the
    case, without the checker's frames."""
    with forbidden_calls(check) as called:
        try:
            return_value, error = fn(*args, **kwargs), None
        except Exception as err:  # the learner's code may raise anything
            return_value, error = None, err
    if called:
        raise CheckFailed(
            f"{check}: your function called {called[0]}; this exercise asks you to write it "
            "yourself"
        )
    if error is not None:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        where = f"\n  at line {frame.lineno} of {frame.name}(): {frame.line}" if frame.line else ""
        message = f"your function raised {type(error).__name__}: {error}{where}"
        raise _fail(check, case, message) from None
    return return_value


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` equals ``b`` to the checkers' tolerance (in ``b``'s dtype, so a learner
    who computes in float32 or float64 is judged on values, not on dtype)."""
    if not a.is_floating_point() or a.shape != b.shape:
        return False
    return torch.allclose(a.to(b.dtype), b, atol=_ATOL, rtol=_RTOL)


def _tensor(
    check: str,
    case: str,
    out: object,
    shape: tuple | None = None,
    hint: str = "",
    *,
    nonfinite: str | None = None,
):
    """The learner's result, detached, if it is a floating-point tensor of ``shape`` (and, with
    ``nonfinite``, free of NaN and inf); otherwise a failure that says what came back (``hint``
    is added to a wrong shape's message, ``nonfinite`` is the message for NaN or inf)."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        got = f"a {out.dtype} tensor" if isinstance(out, torch.Tensor) else type(out).__name__
        raise _fail(check, case, f"expected a floating-point tensor, got {got}")
    if shape is not None and tuple(out.shape) != tuple(shape):
        message = f"wrong output shape {tuple(out.shape)}, expected {tuple(shape)}{hint}"
        raise _fail(check, case, message)
    if nonfinite is not None and not torch.isfinite(out).all():
        raise _fail(check, case, nonfinite)
    return out.detach()


def _first_match(
    got: torch.Tensor,
    suspects: Iterable[tuple[str, object]],
    variant: Callable[..., torch.Tensor | None],
    *,
    right: torch.Tensor | None = None,
    close: Callable[[torch.Tensor, torch.Tensor], bool] = _close,
) -> str | None:
    """The diagnosis of the first mistake of the table ``suspects`` that reproduces ``got``.

    Each ``(diagnosis, knobs)``: ``knobs`` is a dict for ``variant`` (the computation written
    with that mistake, None if it cannot run), a callable giving the mistaken output, or that
    output. A mistake that makes no difference on this case (it gives ``right``) is skipped.
    """
    for message, knobs in suspects:
        out = variant(**knobs) if isinstance(knobs, dict) else knobs
        out = out() if callable(out) else out
        if out is not None and close(got, out) and (right is None or not close(out, right)):
            return message
    return None


def _as_int(name: str, case: str, out: object, *, expected: str, not_whole: str) -> int:
    """The learner's answer as an int, or a failure saying why not: ``expected`` names what it
    counts ("a number of FLOPs"), ``not_whole`` (formatted with ``value``) a fraction's message."""
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        raise _fail(name, case, f"expected an int ({expected}), got {type(out).__name__}")
    if not float(out).is_integer():
        raise _fail(name, case, not_whole.format(value=float(out)))
    return int(out)
