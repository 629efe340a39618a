"""attention.allocations: a dispatch mode that records the tensors a computation creates."""

from __future__ import annotations

import torch

from attention.allocations import AllocationRecorder, TensorAllocation, largest_allocation


def test_records_new_tensors_with_shape_dtype_and_operator():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    with AllocationRecorder() as rec:
        c = a @ b
        d = torch.zeros(7, dtype=torch.float64)
    assert rec.allocations == [
        TensorAllocation(3 * 5 * 4, (3, 5), torch.float32, "aten.mm.default"),
        TensorAllocation(7 * 8, (7,), torch.float64, "aten.zeros.default"),
    ]
    assert rec.largest().shape == (3, 5)
    assert c.shape == (3, 5) and d.shape == (7,)


def test_views_in_place_and_out_buffers_are_not_allocations():
    x, out = torch.randn(6, 8), torch.empty(6, 8)
    with AllocationRecorder() as rec:
        x.view(8, 6).transpose(0, 1)[:2]
        x.mul_(2.0)
        torch.softmax(x, dim=-1, out=out)
        x.expand(3, 6, 8)
    assert rec.allocations == []
    assert rec.largest() is None


def test_backward_passes_are_recorded_and_the_largest_is_found():
    q = torch.randn(2, 16, 8, requires_grad=True)

    def step():
        torch.softmax(q @ q.transpose(-2, -1), dim=-1).sum().backward()

    largest = largest_allocation(step)
    assert largest.nbytes == 2 * 16 * 16 * 4  # a (2, 16, 16) float32 matrix
    with AllocationRecorder() as rec:
        step()
    assert any("backward" in a.op for a in rec.allocations)
