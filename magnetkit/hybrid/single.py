"""Single-model Hybrid-MAGNeT (paper §3.4): one transformer, a causal delayed prefix, a parallel rest.

The model's input is the prefix block (a start column, then the prefix in the delay pattern,
attended causally) followed by the frames after the prefix in MAGNeT's parallel layout::

    [ S | delayed prefix (P + K - 1 columns) ][ frames P .. T-1 (T - P columns) ]
      <-------- causal_prefix = P + K ------>  <--- full / restricted attention -->

The prefix is decoded token by token with a key/value cache (`MagnetSession`); the rest by the
ordinary MAGNeT engine, through `PrefixedModel`, which puts the finished block in front.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from magnetkit.interfaces import Rescorer
from magnetkit.model.transformer import CrossCache, MagnetTransformer, sin_embedding


class MagnetSession:
    """Token-by-token decoding of the causal prefix with a self-attention key/value cache.

    Each step computes exactly what `MagnetTransformer.forward` computes for the newest column
    of a causal prefix (tested against it); the cache turns P forwards of growing length into
    P single-column ones.
    """

    def __init__(self, model: MagnetTransformer, condition: torch.Tensor, max_columns: int):
        self.model = model
        self.cross_cache: CrossCache = model.cross_attention_cache(condition)
        self.max_columns = max_columns
        config = model.config
        self.positions = config.positional_scale * sin_embedding(
            max_columns, config.dim, config.max_period, device=condition.device,
            dtype=model.out_norm.weight.dtype) if config.sin_positions else None  # [1, C, D]
        self.rotary = model.rotary(max_columns, condition.device) if config.rotary_positions else None
        self.keys: list[torch.Tensor | None] = [None] * len(model.layers)
        self.values: list[torch.Tensor | None] = [None] * len(model.layers)
        self.length = 0

    @torch.no_grad()
    def step(self, column: torch.Tensor) -> torch.Tensor:
        """[R, K] codes of the next input column -> [R, K, card] logits at that column."""
        model = self.model
        if self.length >= self.max_columns:
            raise ValueError(f"the session was sized for {self.max_columns} columns")
        now = slice(self.length, self.length + 1)
        x = sum(model.emb[k](column[:, k]) for k in range(column.shape[1]))[:, None]  # [R, 1, D]
        if self.positions is not None:
            x = x + self.positions[:, now]
        rotary = None if self.rotary is None else (self.rotary[0][now], self.rotary[1][now])
        for i, (layer, cross_kv) in enumerate(zip(model.layers, self.cross_cache)):
            # Mirrors `Layer.forward` for one query row that may see every cached row (causal).
            query, key, value = layer.self_attn.self_queries_keys_values(layer.norm1(x), rotary)  # [R, H, 1, hd]
            self.keys[i] = key if self.keys[i] is None else torch.cat([self.keys[i], key], dim=2)
            self.values[i] = value if self.values[i] is None else torch.cat([self.values[i], value], dim=2)
            x = x + layer.self_attn.attend(query, self.keys[i], self.values[i], None)
            query = layer.cross_attention.queries(layer.norm_cross(x))
            x = x + layer.cross_attention.attend(query, *cross_kv, mask=None)
            x = x + layer.linear2(F.gelu(layer.linear1(layer.norm2(x))))
        self.length += 1
        x = model.out_norm(x)
        return torch.stack([head(x[:, 0]) for head in model.linears], dim=1)  # [R, K, card]


class PrefixedModel:
    """A MAGNeT transformer seen through a fixed prefix block: the engine decodes only what follows it."""

    def __init__(self, model: MagnetTransformer, block: torch.Tensor):
        self.model = model
        self.block = block  # [B, K, N]
        self.config = model.config

    def cross_attention_cache(self, condition: torch.Tensor) -> CrossCache:
        """The wrapped model's cross-attention cache."""
        return self.model.cross_attention_cache(condition)

    def __call__(self, codes: torch.Tensor, condition: torch.Tensor | None, stage: int, *,
                 stage_only: bool = False, cross_cache: CrossCache | None = None, **switches: bool) -> torch.Tensor:
        """Logits of ``codes`` [R, K, T] (R a multiple of B: guidance rows) behind the prefix block.

        ``switches`` (the engine's speed options) go to the transformer unchanged.
        """
        block = self.block.repeat(codes.shape[0] // self.block.shape[0], 1, 1)
        width = block.shape[-1]
        logits = self.model(torch.cat([block, codes], dim=-1), condition, stage, stage_only=stage_only,
                            cross_cache=cross_cache, causal_prefix=width, **switches)
        return logits[:, :, width:]


class PrefixedRescorer:
    """A rescorer that scores the parallel part together with the prefix before it."""

    def __init__(self, rescorer: Rescorer, prefix: torch.Tensor):
        self.rescorer = rescorer
        self.prefix = prefix  # [B, K, P]
        self.weight = rescorer.weight

    def applies(self, stage: int, step: int) -> bool:
        """As the wrapped rescorer."""
        return self.rescorer.applies(stage, step)

    def token_probs(self, codes: torch.Tensor, texts: Sequence[str | None]) -> torch.Tensor:
        """[B, K, T] -> [B, K, T]: the wrapped rescorer's probabilities of the whole sequence, prefix cut off."""
        width = self.prefix.shape[-1]
        return self.rescorer.token_probs(torch.cat([self.prefix, codes], dim=-1), texts)[..., width:]
