"""Checker of ``attention.profiling`` (chapter 09): the FLOPs of an attention layer, 8TD² + 4T²D."""

from __future__ import annotations

from collections.abc import Callable

from ..profiling import attention_flops_formula
from ._common import _as_int, _call, _fail, _generator, _randint

# The usual mistakes, as functions of (T, D), the more specific first.
_MISTAKES: list[tuple[str, Callable[[int, int], int]]] = [
    ("half the FLOPs: a multiply-add is 2 FLOPs (one multiply, one add), as "
     "torch.utils.flop_counter counts it; an (m x n) @ (n x p) product costs 2mnp",
     lambda T, D: 4 * T * D * D + 2 * T * T * D),
    ("the output projection W^O is missing: there are four D x D projections "
     "(q_proj, k_proj, v_proj, out_proj), 2TD² FLOPs each, so 8TD² in all",
     lambda T, D: 6 * T * D * D + 4 * T * T * D),
    ("the output projection is missing and multiply-adds are counted as 1 FLOP: "
     "four projections at 2TD² each, plus 2T²D for q k^T and 2T²D for the weights times v",
     lambda T, D: 3 * T * D * D + 2 * T * T * D),
    ("the projections are missing: q k^T and the weighted sum of v cost 4T²D, but the "
     "four D x D projections add 8TD²", lambda T, D: 4 * T * T * D),
    ("only one of the two T x T products: q k^T costs 2T²D and the weights times v another 2T²D",
     lambda T, D: 8 * T * D * D + 2 * T * T * D),
    ("O(T²D²) is the article's mistake (ERRATA R6): no product multiplies T² by D²; the "
     "projections cost O(TD²) and the two T x T products O(T²D)", lambda T, D: T * T * D * D),
    ("O(T²D²) is the article's mistake (ERRATA R6): no product multiplies T² by D²; the "
     "projections cost O(TD²) and the two T x T products O(T²D)", lambda T, D: 2 * T * T * D * D),
]  # fmt: skip


def check_attention_flops(fn: Callable) -> None:
    """Check a learner's FLOP count of one multi-head self-attention layer on fresh cases.

    Args:
        fn: called as ``fn(T, D)`` with ``T`` tokens and model width ``D``; returns the FLOPs
            of the four projections and the two T x T products on one sequence, counted as
            ``torch.utils.flop_counter`` counts them (2 per multiply-add, biases and softmax
            not included), as ``attention.attention_flops_formula``.

    Introduced in chapter 09 (exercise ex-09-flops).
    """
    name = "check_attention_flops"
    gen = _generator()
    cases = [(64, 512), (1, 1), (_randint(gen, 2, 5000), 8 * _randint(gen, 1, 256))]
    cases += [(_randint(gen, 2, 100_000), _randint(gen, 2, 4096)) for _ in range(3)]
    answers, wrong = {}, []
    for T, D in cases:
        case = f"T={T}, D={D}"
        answers[T, D] = _as_int(
            name,
            case,
            _call(name, case, fn, T, D),
            expected="a number of FLOPs",
            not_whole="got {value:.6g}: a FLOP count is a whole number",
        )
        expected = attention_flops_formula(T, D)
        if answers[T, D] != expected:
            wrong.append((case, answers[T, D], expected))
    if wrong:
        case, got, expected = wrong[0]
        for message, mistake in _MISTAKES:
            if all(mistake(T, D) == a for (T, D), a in answers.items()):
                raise _fail(name, case, f"got {got:,}, expected {expected:,}: {message}")
        raise _fail(
            name,
            case,
            f"got {got:,}, expected {expected:,} = 8TD² + 4T²D: four projections at 2TD² each, "
            "plus 2T²D for q k^T and 2T²D for the weights times v",
        )
    print(f"{name}: all {len(cases)} random cases equal 8TD² + 4T²D, as the flop counter counts.")
