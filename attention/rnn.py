"""GRU encoder–decoders from before the Transformer: one context vector, or attention.

Without attention the decoder sees the source only through one fixed-size vector ``c`` (Cho et
al. 2014; Sutskever et al. 2014), the bottleneck that Bahdanau et al. (2015) conjectured and
removed: with attention, each target step computes its own context ``c_t`` as a weighted average
of **all** the encoder states.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_int, check_token_ids
from .additive import AdditiveAttention
from .core import scaled_dot_product_attention

__all__ = ["ATTENTION_KINDS", "RNNSeq2Seq"]

ATTENTION_KINDS = ("none", "additive", "dot")


class _DotAttention(nn.Module):
    """Scaled dot-product scores ``q · (W_k k) / sqrt(Dq)``: Luong et al.'s "general" score,
    scaled as in the Transformer. ``W_k`` brings the keys to the query's width."""

    def __init__(self, query_dim: int, key_dim: int, **factory) -> None:
        super().__init__()
        self.k_proj = nn.Linear(key_dim, query_dim, bias=False, **factory)

    def forward(self, query, key, value, mask=None, need_weights=True):
        k = self.k_proj(key)  # (B, S, Dk) -> (B, S, Dq)
        out, weights = scaled_dot_product_attention(query, k, value, mask)  # (B, T, Dv), (B, T, S)
        return out, (weights if need_weights else None)


class RNNSeq2Seq(nn.Module):
    r"""A GRU encoder–decoder, without attention or with additive or dot-product attention.

    The encoder is a bidirectional GRU: encoder state ``h_j = [→h_j; ←h_j]`` summarises the
    source around position ``j`` (Bahdanau et al. 2015, §3.2). The decoder is a GRU over the
    target shifted right, started from ``tanh(W_s c)``, where ``c = [→h_S; ←h_1]`` is the
    fixed-size summary of the whole source. At each target step ``t`` it predicts from
    ``tanh(W_c [s_t; c_t])`` (Luong et al. 2015, eq. 5), with

    - ``attention="none"``: ``c_t = c`` for every ``t``: one vector of width ``2H`` carries
      the whole source, however long;
    - ``attention="additive"``: ``c_t = Σ_j α_tj h_j``, scored by ``AdditiveAttention``;
    - ``attention="dot"``: the same, scored by ``s_t · W_k h_j / sqrt(H)``.

    The query is the current state ``s_t`` (Luong et al.), not Bahdanau's previous state
    ``s_{t-1}`` fed back into the GRU: so training runs the decoder GRU over all target positions
    in one call, and only inference goes step by step.

    Args:
        src_vocab_size: size of the source vocabulary.
        tgt_vocab_size: size of the target vocabulary.
        embed_dim: width of the token embeddings.
        hidden_dim: width ``H`` of each GRU state; encoder states have width ``2H``.
        attention: ``"none"``, ``"additive"`` or ``"dot"``.
        pad_id: the padding id of the source (masked as a key, skipped by the encoder) and of
            the target (keyword only).
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

    Shapes:
        src ``(B, S)``, tgt ``(B, T)`` -> logits ``(B, T, V_tgt)``.

    Introduced in chapter 01 (from seq2seq to attention).
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embed_dim: int = 32,
        hidden_dim: int = 64,
        attention: str = "additive",
        *,
        pad_id: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, size in [("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size),
                           ("embed_dim", embed_dim), ("hidden_dim", hidden_dim)]:  # fmt: skip
            check_int(name, size)
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        factory = {"device": device, "dtype": dtype}
        E, H = embed_dim, hidden_dim  # embedding width, state width
        self.kind, self.pad_id, self.hidden_dim = attention, pad_id, hidden_dim
        self.src_embed = nn.Embedding(src_vocab_size, E, padding_idx=pad_id, **factory)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, E, padding_idx=pad_id, **factory)
        self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=True, **factory)
        self.init_proj = nn.Linear(2 * H, H, **factory)  # W_s: summary -> first decoder state
        self.decoder = nn.GRU(E, H, batch_first=True, **factory)
        self.attention: nn.Module | None = None
        if attention == "additive":
            self.attention = AdditiveAttention(H, 2 * H, H, **factory)
        elif attention == "dot":
            self.attention = _DotAttention(H, 2 * H, **factory)
        self.combine = nn.Linear(3 * H, H, **factory)  # W_c: [s_t; c_t] -> attentional state
        self.lm_head = nn.Linear(H, tgt_vocab_size, **factory)

    def _check_ids(self, name: str, ids: object) -> None:
        embedding = self.src_embed if name == "src" else self.tgt_embed
        check_token_ids(name, ids, embedding.num_embeddings, long_only=True)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode right-padded source ids into one state per token and a fixed-size summary.

        Args:
            src: source ids, right-padded with ``pad_id``; every row has at least one token.

        Returns:
            ``(memory, summary)``: the encoder states ``h_j`` (zero at padding) and
            ``c = [→h_S; ←h_1]``, the last state of each direction.

        Shapes:
            src ``(B, S)`` -> memory ``(B, S, 2H)``, summary ``(B, 2H)``.

        Introduced in chapter 01 (from seq2seq to attention).
        """
        self._check_ids("src", src)
        lengths = (src != self.pad_id).sum(dim=1)  # (B,)
        if (lengths == 0).any():
            raise ValueError("every source row needs at least one non-pad token")
        x = self.src_embed(src)  # (B, S) -> (B, S, E)
        # Packing makes each direction stop at the row's last real token, not at the padding.
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        states, last = self.encoder(packed)  # last: (2, B, H), forward then backward
        memory, _ = nn.utils.rnn.pad_packed_sequence(
            states, batch_first=True, total_length=src.shape[1]
        )  # (B, S, 2H)
        summary = torch.cat([last[0], last[1]], dim=-1)  # (2, B, H) -> (B, 2H)
        return memory, summary

    def decode(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        summary: torch.Tensor,
        src: torch.Tensor,
        state: torch.Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Run the decoder over ``tgt``, reading the source through ``encode``'s outputs.

        Without attention only ``summary`` is read (``memory`` is ignored); with attention,
        each step reads ``memory`` through its weights, ``summary`` only starts the GRU.

        Args:
            tgt: target ids starting with BOS (teacher forcing), or the newest id when
                decoding step by step with ``state``.
            memory: the encoder states from ``encode``.
            summary: the fixed-size summary from ``encode``.
            src: the source ids (for the padding mask of the keys).
            state: the decoder GRU's state after the previous ids; None starts from
                ``tanh(W_s summary)``.
            need_weights: False returns None for the weights.

        Returns:
            ``(logits, weights, state)``: next-token logits at every position, the attention
            weights (None without attention) and the state after the last position.

        Shapes:
            tgt ``(B, T)``, memory ``(B, S, 2H)``, summary ``(B, 2H)``, src ``(B, S)``, state
            ``(1, B, H)`` -> logits ``(B, T, V_tgt)``, weights ``(B, T, S)``, state ``(1, B, H)``.

        Introduced in chapter 01 (from seq2seq to attention).
        """
        if state is None:
            state = torch.tanh(self.init_proj(summary))[None]  # (B, 2H) -> (1, B, H)
        s, state = self.decoder(self.tgt_embed(tgt), state)  # (B, T, H), (1, B, H)
        if self.attention is None:
            context = summary[:, None].expand(-1, s.shape[1], -1)  # (B, 2H) -> (B, T, 2H)
            weights = None
        else:
            key_mask = (src != self.pad_id)[:, None, :]  # (B, S) -> (B, 1, S)
            context, weights = self.attention(
                s, memory, memory, key_mask, need_weights
            )  # (B, T, 2H), (B, T, S)
        attentional = torch.tanh(self.combine(torch.cat([s, context], dim=-1)))  # (B, T, H)
        return self.lm_head(attentional), weights, state  # (B, T, V), (B, T, S), (1, B, H)

    def forward_with_weights(
        self, src: torch.Tensor, tgt: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced logits and the attention weights of every target step.

        Args:
            src: source ids.
            tgt: target ids starting with BOS (the target shifted right).
            need_weights: False returns None for the weights.

        Returns:
            ``(logits, weights)``; ``weights`` is None without attention.

        Shapes:
            src ``(B, S)``, tgt ``(B, T)`` -> logits ``(B, T, V_tgt)``, weights ``(B, T, S)``.

        Introduced in chapter 01 (from seq2seq to attention).
        """
        self._check_ids("tgt", tgt)
        memory, summary = self.encode(src)  # (B, S, 2H), (B, 2H)
        logits, weights, _ = self.decode(tgt, memory, summary, src, need_weights=need_weights)
        return logits, weights

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: src ``(B, S)``, tgt ``(B, T)`` -> ``(B, T, V)``. Chapter 01."""
        return self.forward_with_weights(src, tgt, need_weights=False)[0]

    @torch.no_grad()
    def generate(
        self, src: torch.Tensor, max_len: int, *, bos_id: int, eos_id: int
    ) -> torch.Tensor:
        """Translate ``src`` greedily, one token per step, from BOS until EOS or ``max_len``.

        Args:
            src: source ids, right-padded with ``pad_id``.
            max_len: the most target tokens to generate (EOS included).
            bos_id: the id that starts every target.
            eos_id: the id that ends a target; rows that produced it get ``pad_id`` after.

        Returns:
            The generated ids without BOS.

        Shapes:
            src ``(B, S)`` -> ``(B, n)`` with ``n <= max_len``.

        Introduced in chapter 01 (from seq2seq to attention).
        """
        check_int("max_len", max_len)
        was_training = self.training
        self.eval()
        try:
            memory, summary = self.encode(src)  # (B, S, 2H), (B, 2H)
            state = None  # the decoder starts from tanh(W_s summary)
            B = src.shape[0]  # batch
            token = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
            done = torch.zeros(B, dtype=torch.bool, device=src.device)
            out = []
            for _ in range(max_len):
                logits, _, state = self.decode(token, memory, summary, src, state, False)
                token = logits.argmax(dim=-1).masked_fill(done[:, None], self.pad_id)  # (B, 1)
                out.append(token)
                done |= token[:, 0] == eos_id
                if done.all():
                    break
        finally:
            self.train(was_training)
        return torch.cat(out, dim=1)  # n x (B, 1) -> (B, n)

    def extra_repr(self) -> str:
        return f"attention={self.kind!r}"
