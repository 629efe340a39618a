"""attention.alignment: the alignment read from a Transformer's cross-attention."""

import pytest
import torch

from attention import Transformer, cross_attention_alignment


def test_alignment_is_the_argmax_of_the_head_averaged_cross_attention():
    cross = torch.softmax(torch.randn(2, 3, 4, 5, 7), dim=-1)  # (N, B, H, T, S)
    maps = {"encoder": torch.rand(2, 3, 4, 7, 7), "cross": cross}
    expected = torch.stack(
        [torch.tensor([int(cross[-1, b, :, t].mean(0).argmax()) for t in range(5)])
         for b in range(3)]
    )  # fmt: skip
    assert torch.equal(cross_attention_alignment(maps), expected)
    first = cross_attention_alignment(maps, layer=0)
    assert torch.equal(first, cross[0].mean(1).argmax(-1))
    assert first.shape == (3, 5) and first.dtype == torch.long


def test_alignment_reads_a_transformers_attention_maps():
    torch.manual_seed(0)
    model = Transformer(9, 11, d_model=16, num_heads=2, dropout=0.0)
    src, tgt = torch.randint(3, 9, (2, 6)), torch.randint(3, 11, (2, 4))
    with torch.no_grad():
        maps = model.attention_maps(src, tgt)
    aligned = cross_attention_alignment(maps)
    assert aligned.shape == (2, 4) and int(aligned.max()) < 6


def test_alignment_errors():
    with pytest.raises(ValueError, match=r'maps\["cross"\] must be the cross-attention maps'):
        cross_attention_alignment({"encoder": torch.rand(1, 1, 1, 3, 3)})
    with pytest.raises(ValueError, match=r"got \(1, 3, 4\)"):
        cross_attention_alignment({"cross": torch.rand(1, 3, 4)})
    with pytest.raises(ValueError, match="layer=2 is out of range for 2 decoder layers"):
        cross_attention_alignment({"cross": torch.rand(2, 1, 1, 3, 4)}, layer=2)
