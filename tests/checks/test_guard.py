"""The reference guard: no checker can be passed by calling what it checks against."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import attention
from attention import checks
from attention import scaled_dot_product_attention as sdpa  # an alias must be caught too
from attention.checks._guard import FORBIDDEN, resolve


def _mha_fix(x, q_proj, k_proj, v_proj, out_proj, num_heads, dropout=0.0, training=False):
    mha = attention.MultiHeadAttention(x.shape[-1], num_heads, dropout, dtype=x.dtype)
    for name, layer in zip(("q", "k", "v", "out"), (q_proj, k_proj, v_proj, out_proj), strict=True):
        getattr(mha, f"{name}_proj").load_state_dict(layer.state_dict())
    return mha.train(training)(x)


def _encoder(x, mask, self_attn, ffn, norm1, norm2):
    return attention.EncoderLayer(x.shape[-1], self_attn.num_heads, 8, dtype=x.dtype)(x, mask)


def _torch_encoder(x, mask, self_attn, ffn, norm1, norm2):
    layer = nn.TransformerEncoderLayer(x.shape[-1], self_attn.num_heads, 8, 0.0, batch_first=True)
    return layer.to(x.dtype)(x)


def _decoder(y, memory, lengths, self_attn, cross_attn, ffn, *norms):
    return attention.DecoderLayer(y.shape[-1], self_attn.num_heads, 8, dtype=y.dtype)(y, memory)


def _cached_step(q, k_new, v_new, k_cache, v_cache):
    k, v = torch.cat([k_cache, k_new], dim=2), torch.cat([v_cache, v_new], dim=2)
    return sdpa(q, k, v)[0], k, v


# (checker, an answer that calls the reference, the name the failure gives)
def _counted_additive_flops(T, S, Dq, Dk, Dh, Dv):
    shapes = [(T, Dq), (S, Dk), (S, Dv), (Dh, Dq), (Dh, Dk), (Dh,)]
    return attention.count_flops(attention.additive_attention, *map(torch.randn, shapes))


def _gat_layer(x, adj, weight, a_src, a_dst):
    layer = attention.GATLayer(weight.shape[0], weight.shape[1], bias=False).double()
    with torch.no_grad():
        layer.lin.weight.copy_(weight.T)
        layer.att_src.copy_(a_src[None])
        layer.att_dst.copy_(a_dst[None])
    return layer(x, adj)


REFERENCE_CALLS = [
    ("check_scaled_dot_product_attention", lambda q, k, v, mask=None: sdpa(q, k, v, mask),
     "attention.scaled_dot_product_attention"),
    ("check_scaled_dot_product_attention",
     lambda q, k, v, mask=None: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
     "torch.nn.functional.scaled_dot_product_attention"),
    ("check_masked_softmax", attention.masked_softmax, "attention.masked_softmax"),
    ("check_mask_conventions", attention.invert_mask, "attention.invert_mask"),
    ("check_decoder_mask",
     lambda am: attention.combine_masks(attention.causal_mask(am.shape[1]),
                                        key_padding=attention.from_hf_attention_mask(am)),
     "attention.from_hf_attention_mask"),
    ("check_multi_head_attention", attention.MultiHeadAttention, "attention.MultiHeadAttention"),
    ("check_multi_head_attention",
     lambda x, *layers, mask=None: nn.MultiheadAttention(x.shape[-1], layers[-1], batch_first=True,
                                                         dtype=x.dtype)(x, x, x),
     "torch.nn.MultiheadAttention"),
    ("check_article_attention_fix", _mha_fix, "attention.MultiHeadAttention"),
    ("check_sinusoidal_positional_encoding", attention.sinusoidal_positional_encoding,
     "attention.sinusoidal_positional_encoding"),
    ("check_rope", lambda q, k: (attention.apply_rope(q), attention.apply_rope(k)),
     "attention.apply_rope"),
    ("check_alibi_bias", attention.alibi_bias, "attention.alibi_bias"),
    ("check_encoder_layer", _encoder, "attention.EncoderLayer"),
    ("check_encoder_layer", _torch_encoder, "torch.nn.TransformerEncoderLayer"),
    ("check_decoder_layer", _decoder, "attention.DecoderLayer"),
    ("check_masked_cross_entropy", attention.masked_cross_entropy,
     "attention.masked_cross_entropy"),
    ("check_masked_cross_entropy",
     lambda lg, t, p, e: F.cross_entropy(lg.mT, t, ignore_index=p, label_smoothing=e),
     "torch.nn.functional.cross_entropy"),
    ("check_cached_attention_step", _cached_step, "attention.scaled_dot_product_attention"),
    ("check_attention_flops", attention.attention_flops_formula,
     "attention.attention_flops_formula"),
    ("check_max_path_length", attention.max_path_length, "attention.max_path_length"),
    ("check_online_softmax_update", attention.online_softmax_update,
     "attention.online_softmax_update"),
    ("check_flash_attention", lambda q, k, v, b: attention.flash_attention(q, k, v, block_size=b),
     "attention.flash_attention"),
    ("check_patch_embedding",
     lambda images, w, b, p: F.conv2d(images, w, b, stride=p).flatten(2).transpose(1, 2),
     "torch.nn.functional.conv2d"),
    ("check_gat_head", _gat_layer, "attention.GATLayer"),
    ("check_additive_attention", attention.additive_attention, "attention.additive_attention"),
    ("check_additive_flops", _counted_additive_flops, "attention.count_flops"),
    ("check_alignment", attention.cross_attention_alignment,
     "attention.cross_attention_alignment"),
    ("check_mean_pool", attention.mean_pool, "attention.mean_pool"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "answer", "called"),
    REFERENCE_CALLS,
    ids=[f"{check}-{called.rsplit('.', 1)[1]}" for check, _, called in REFERENCE_CALLS],
)
def test_calling_the_reference_fails_the_check_with_one_message(check, answer, called) -> None:
    with pytest.raises(checks.CheckFailed) as info:
        getattr(checks, check)(answer)
    assert str(info.value) == (
        f"{check}: your function called {called}; this exercise asks you to write it yourself"
    )
    assert sys.getprofile() is None  # the guard is gone after the check


def test_every_checker_is_guarded_and_tested_here() -> None:
    checkers = {name for name in checks.__all__ if name.startswith("check_")}
    assert checkers == set(FORBIDDEN), "every checker needs an entry in _guard.FORBIDDEN"
    assert checkers == {check for check, _, _ in REFERENCE_CALLS}


@pytest.mark.parametrize("name", sorted({n for names in FORBIDDEN.values() for n in names}))
def test_every_forbidden_name_resolves_to_functions(name: str) -> None:
    assert resolve(name)


def test_the_guard_watches_only_the_learners_call(capsys) -> None:
    """The checker's own references run unguarded: a correct answer passes."""

    def flops(T, D):
        return 8 * T * D * D + 4 * T * T * D

    checks.check_attention_flops(flops)
    assert "all 6 random cases equal" in capsys.readouterr().out


def test_a_failure_renders_as_its_diagnosis_alone() -> None:
    def stub(T, D):
        raise NotImplementedError("count the FLOPs here")

    with pytest.raises(checks.CheckFailed) as info:
        checks.check_attention_flops(stub)
    lines = info.value._render_traceback_()
    assert lines == str(info.value).splitlines()
    assert lines[0] == "check_attention_flops failed on T=64, D=512:"
    assert "NotImplementedError: count the FLOPs here" in lines[1]
    assert isinstance(info.value, AssertionError)
