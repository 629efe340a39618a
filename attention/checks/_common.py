"""What every checker shares: fresh random cases, calling the learner, failing clearly."""

from __future__ import annotations

import numbers
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch

_ATOL, _RTOL = 1e-6, 1e-5


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


def _random_mask(gen: torch.Generator, *shape: int, cover_columns: bool = False) -> torch.Tensor:
    """A random bool mask in which every row has at least one True and one False.

    With ``cover_columns``, every column also has a True, so that a softmax taken over the
    wrong axis (dim=-2) stays finite and can be recognised.
    """
    cols = shape[-1]
    while True:
        mask = torch.rand(*shape, generator=gen) < 0.5
        keep = torch.randint(0, cols, (*shape[:-1], 1), generator=gen)
        drop = (keep + torch.randint(1, cols, keep.shape, generator=gen)) % cols
        mask.scatter_(-1, keep, True)
        mask.scatter_(-1, drop, False)
        if not cover_columns or mask.any(dim=-2).all():
            return mask


def _fail(check: str, case: str, message: str) -> AssertionError:
    return AssertionError(f"{check} failed on {case}:\n  {message}")


def _call(check: str, case: str, fn: Callable, *args: torch.Tensor):
    """Call the learner's function; if it raises, say where, without the checker's own frames."""
    __tracebackhide__ = True  # IPython and pytest hide this frame from tracebacks
    try:
        return fn(*args)
    except Exception as err:  # the learner's code may raise anything; report it with the case
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"line {frame.lineno} of {frame.name}(): {frame.line}" if frame.line else ""
        message = f"your function raised {type(err).__name__}: {err}"
        raise _fail(check, case, f"{message}\n  at {where}" if where else message) from None


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` equals ``b`` to the checkers' tolerance (in ``b``'s dtype, so a learner
    who computes in float32 or float64 is judged on values, not on dtype)."""
    if not a.is_floating_point() or a.shape != b.shape:
        return False
    return torch.allclose(a.to(b.dtype), b, atol=_ATOL, rtol=_RTOL)


def _as_int(name: str, case: str, out: object, *, expected: str, not_whole: str) -> int:
    """The learner's answer as an int, or a failure saying why it is not one.

    ``expected`` names what the int counts ("a number of FLOPs"); ``not_whole`` is the message
    for a non-integral answer, formatted with ``value``.
    """
    __tracebackhide__ = True
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        raise _fail(name, case, f"expected an int ({expected}), got {type(out).__name__}")
    if not float(out).is_integer():
        raise _fail(name, case, not_whole.format(value=float(out)))
    return int(out)
