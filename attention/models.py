"""Whole models: the encoder–decoder Transformer and a decoder-only language model."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import check_int, check_token_ids
from .decoder import Decoder
from .encoder import Encoder
from .kv_cache import KVCache
from .masks import causal_mask
from .positional import sinusoidal_positional_encoding

__all__ = ["DecoderOnlyLM", "Transformer"]


class _Embedding(nn.Module):
    """Token embedding times ``sqrt(D)`` ([V] §3.4) plus sinusoidal positions ([V] §3.5)."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float, **factory):
        super().__init__()
        check_int("vocab_size", vocab_size)
        check_int("max_len", max_len)
        self.tokens = nn.Embedding(vocab_size, d_model, **factory)
        # std D^-1/2, so that embedding * sqrt(D) has unit scale, like the positions it meets
        # (PyTorch's default N(0, 1) would drown them by a factor sqrt(D)), as in fairseq.
        nn.init.normal_(self.tokens.weight, std=d_model**-0.5)
        pe = sinusoidal_positional_encoding(max_len, d_model, dtype=self.tokens.weight.dtype)
        self.register_buffer("pe", pe.to(self.tokens.weight.device), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.scale = math.sqrt(d_model)

    def output_layer(self, tie: bool) -> nn.Linear:
        """The final layer to next-token logits; ``tie`` shares this embedding ([V] §3.4)."""
        w = self.tokens.weight  # (V, D)
        head = nn.Linear(w.shape[1], w.shape[0], bias=False, device=w.device, dtype=w.dtype)
        if tie:
            head.weight = w
        return head

    def check(self, ids: torch.Tensor) -> None:
        """Validate ids at a model's public entry: dtype, shape and range (one device sync)."""
        check_token_ids("token ids", ids, self.tokens.num_embeddings)

    def forward(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        T = ids.shape[1]  # tokens
        if start + T > self.pe.shape[0]:  # no device sync: checked at every step
            raise ValueError(
                f"positions {start}..{start + T - 1} exceed max_len={self.pe.shape[0]}"
            )
        x = self.tokens(ids) * self.scale  # (B, T) -> (B, T, D)
        return self.dropout(x + self.pe[start : start + T])  # (B, T, D) + (T, D)


class Transformer(nn.Module):
    """The encoder–decoder Transformer of Vaswani et al. (2017), small enough for a CPU.

    Source tokens are embedded and encoded into one vector per token; the decoder reads the
    target shifted right (``BOS y_1 .. y_{T-1}``) under a causal mask and attends to the
    encoder output; a final linear layer gives next-token logits. Right-padded targets need
    no padding mask in the decoder: the causal mask already hides every later (pad) key.

    Args:
        src_vocab_size: size of the source vocabulary.
        tgt_vocab_size: size of the target vocabulary.
        d_model: model width ``D``.
        num_heads: attention heads ``H``.
        num_encoder_layers: encoder layers.
        num_decoder_layers: decoder layers.
        d_ff: feed-forward width; defaults to ``4 * d_model``.
        dropout: dropout everywhere (embeddings, attention, sublayers).
        max_len: longest source or target sequence.
        pad_id: source padding id, masked in the encoder and cross-attention.
        norm_first: pre-LN instead of the paper's post-LN.
        tie_embeddings: share the target embedding with the output layer, [V] §3.4.
        device: where to create the parameters.
        dtype: dtype of the parameters.

    Shapes:
        src ``(B, S)``, tgt ``(B, T)`` -> logits ``(B, T, V_tgt)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 64,
        num_heads: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        d_ff: int | None = None,
        dropout: float = 0.1,
        *,
        max_len: int = 128,
        pad_id: int | None = 0,
        norm_first: bool = False,
        tie_embeddings: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.pad_id, self.max_len = pad_id, max_len
        self.src_embed = _Embedding(src_vocab_size, d_model, max_len, dropout, **factory)
        self.tgt_embed = _Embedding(tgt_vocab_size, d_model, max_len, dropout, **factory)
        options = dict(norm_first=norm_first, **factory)
        self.encoder = Encoder(num_encoder_layers, d_model, num_heads, d_ff, dropout, **options)
        self.decoder = Decoder(num_decoder_layers, d_model, num_heads, d_ff, dropout, **options)
        self.lm_head = self.tgt_embed.output_layer(tie_embeddings)

    def source_mask(self, src: torch.Tensor) -> torch.Tensor | None:
        """Return the key mask of the source, True = real token (``(B, S) -> (B, 1, 1, S)``)."""
        return None if self.pad_id is None else (src != self.pad_id)[:, None, None, :]

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """Encode source ids into one vector per token: ``(B, S) -> (B, S, D)``. Chapter 06."""
        self.src_embed.check(src)
        return self._encode(src)

    def _encode(self, src: torch.Tensor) -> torch.Tensor:
        return self.encoder._forward(self.src_embed(src), self.source_mask(src), False)[0]

    def decode(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        src: torch.Tensor,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Predict the next target token at every position, given the encoder output.

        Args:
            tgt: target ids starting with BOS (only the new ids when ``cache`` is given).
            memory: the encoder output for ``src``.
            src: the source ids (for the source padding mask).
            cache: a ``KVCache`` for step-by-step decoding, updated in place (chapter 08).

        Returns:
            The logits of the next token at every target position.

        Shapes:
            tgt ``(B, T)``, memory ``(B, S, D)``, src ``(B, S)`` -> logits ``(B, T, V_tgt)``.

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        self.src_embed.check(src)
        self.tgt_embed.check(tgt)
        self.decoder._check_cache(cache)
        return self._decode(tgt, memory, src, cache)

    def _decode(
        self, tgt: torch.Tensor, memory: torch.Tensor, src: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        start = 0 if cache is None else cache.seq_len
        x = self.tgt_embed(tgt, start)  # (B, T) -> (B, T, D)
        T = tgt.shape[1]  # target tokens
        self_mask = None if cache is not None else causal_mask(T, device=tgt.device)  # (T, T)
        x, _, _ = self.decoder._forward(
            x, memory, self_mask, self.source_mask(src), cache, False
        )  # (B, T, D)
        return self.lm_head(x)  # (B, T, D) -> (B, T, V_tgt)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: src ``(B, S)``, tgt ``(B, T)`` -> ``(B, T, V)``. Chapter 06."""
        self.src_embed.check(src)
        self.tgt_embed.check(tgt)
        return self._decode(tgt, self._encode(src), src, None)

    def attention_maps(self, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return every attention weight of a teacher-forced pass, stacked over layers.

        Args:
            src: source ids.
            tgt: target ids starting with BOS.

        Returns:
            ``{"encoder": (N_enc, B, H, S, S), "decoder_self": (N_dec, B, H, T, T),
            "cross": (N_dec, B, H, T, S)}``.

        Shapes:
            src ``(B, S)``, tgt ``(B, T)`` -> see Returns.

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        self.src_embed.check(src)
        self.tgt_embed.check(tgt)
        src_mask = self.source_mask(src)
        memory, enc_w = self.encoder._forward(self.src_embed(src), src_mask, True)
        self_mask = causal_mask(tgt.shape[1], device=tgt.device)  # (T, T)
        x = self.tgt_embed(tgt)  # (B, T) -> (B, T, D)
        _, self_w, cross_w = self.decoder._forward(x, memory, self_mask, src_mask, None, True)
        return {"encoder": enc_w, "decoder_self": self_w, "cross": cross_w}


class DecoderOnlyLM(nn.Module):
    """A decoder-only (GPT-style) language model: decoder layers without cross-attention.

    Args:
        vocab_size: size of the vocabulary ``V``.
        d_model: model width ``D``.
        num_heads: attention heads ``H``.
        num_layers: decoder layers.
        d_ff: feed-forward width; defaults to ``4 * d_model``.
        dropout: dropout everywhere (embeddings, attention, sublayers).
        max_len: longest sequence.
        num_kv_heads: key/value heads (GQA; 1 = MQA); None = ``num_heads``.
        norm_first: pre-LN (GPT-2 and later) instead of post-LN.
        tie_embeddings: share the token embedding with the output layer.
        device: where to create the parameters.
        dtype: dtype of the parameters.

    Shapes:
        ids ``(B, T)`` -> logits ``(B, T, V)``.

    Introduced in chapter 08 (decoding with a KV cache).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        d_ff: int | None = None,
        dropout: float = 0.1,
        *,
        max_len: int = 128,
        num_kv_heads: int | None = None,
        norm_first: bool = False,
        tie_embeddings: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.max_len = max_len
        self.embed = _Embedding(vocab_size, d_model, max_len, dropout, **factory)
        self.decoder = Decoder(
            num_layers, d_model, num_heads, d_ff, dropout, cross_attention=False,
            num_kv_heads=num_kv_heads, norm_first=norm_first, **factory,
        )  # fmt: skip
        self.lm_head = self.embed.output_layer(tie_embeddings)

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Predict the next token at every position.

        Args:
            ids: token ids (only the new ones when ``cache`` is given).
            cache: a ``KVCache`` for step-by-step decoding, updated in place (chapter 08).

        Returns:
            The next-token logits at every position.

        Shapes:
            ids ``(B, T)`` -> logits ``(B, T, V)``.

        Introduced in chapter 08 (decoding with a KV cache).
        """
        self.embed.check(ids)
        self.decoder._check_cache(cache)
        return self._logits(ids, cache)

    def _logits(self, ids: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        start = 0 if cache is None else cache.seq_len
        x = self.embed(ids, start)  # (B, T) -> (B, T, D)
        T = ids.shape[1]  # tokens
        mask = None if cache is not None else causal_mask(T, device=ids.device)  # (T, T)
        x, _, _ = self.decoder._forward(x, None, mask, None, cache, False)  # (B, T, D)
        return self.lm_head(x)  # (B, T, D) -> (B, T, V)
