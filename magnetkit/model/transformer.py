"""The MAGNeT transformer: codes + condition -> per-codebook logits (paper §3, audiocraft semantics).

One forward pass, top to bottom:

    codes [B, K, T] --K embeddings, summed--> x [B, T, D] --+ sinusoidal positions
    x --N x (pre-norm self-attention, cross-attention to the condition, GELU feed-forward)-->
    out_norm --K linear heads--> logits [B, K, T, card]

Positions are audiocraft's ``positional_embedding``: sinusoids added to the input (``sin``, every
published MAGNeT), queries and keys of self-attention rotated by their frame (``rope``), or both.

Self-attention sees every frame for stage 0 and only frames within ±``subcodes_context`` for
stages above it (paper §3.2, "restricted context"). Cross-attention has no padding mask: as in
audiocraft, padded condition positions are zero vectors that still receive attention weight.

Parameter names follow audiocraft's ``MagnetLMModel`` so checkpoints map one to one: its
``transformer.layers.{i}.*`` are our ``layers.{i}.*``; every other name is identical.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from magnetkit.decoding import DecodeOptions
from magnetkit.errors import UsageError
from magnetkit.interfaces import CrossCache  # per layer: cross-attention keys and values, each [B, H, L, head_dim]
from magnetkit.model.config import ModelConfig

# Query frames per block of restricted-context attention. Each block scores block + 2 * context
# keys instead of all T: at T = 498, context 5, one layer's attention costs ~3x less CPU time
# than SDPA with a [T, T] mask (blocks of 16 to 64 measured within 25% of each other).
ATTENTION_BLOCK = 32
# Whether restricted attention is computed block by block by default (same maths, less work): the
# transformer keyword's default, read from its one home, the recipe's decode section.
BLOCKED_ATTENTION: bool = DecodeOptions.model_fields["blocked_attention"].default


# ------------------------------------------------------------------------ positions and masks
def sin_embedding(num_frames: int, dim: int, max_period: float, *, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sinusoidal positions [1, T, D]: cosines in the first half, sines in the second.

    Same arithmetic, in the same dtype, as audiocraft's ``create_sin_embedding``, so fp16
    models see the same rounding as the reference.
    """
    half = dim // 2
    positions = torch.arange(num_frames, device=device).view(1, -1, 1).to(dtype)  # [1, T, 1]
    channel = torch.arange(half, device=device, dtype=dtype).view(1, 1, -1)  # [1, 1, D/2]
    period = torch.full([], max_period, device=device, dtype=dtype)
    phase = positions / (period ** (channel / (half - 1)))  # [1, T, D/2]
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)  # [1, T, D]


Rotary = tuple[torch.Tensor, torch.Tensor]  # cos and sin of the rotation angles, each [T, head_dim / 2]


@functools.lru_cache(maxsize=32)
def rotary_tables(num_frames: int, head_dim: int, max_period: float,
                  device: torch.device | str = "cpu") -> Rotary:
    """Cosines and sines [T, hd/2] of rotary positions (RoPE, Su et al. 2021), float32.

    Frame t turns channel pair i by t / max_period ** (2i / hd): audiocraft's
    ``RotaryEmbedding`` without xPos, so that ``positional_embedding: rope`` checkpoints mean the
    same here. Cached (read-only) like `restricted_context_blocks`.
    """
    channel = torch.arange(0, head_dim, 2, device=device, dtype=torch.float32)
    frequencies = 1.0 / (max_period ** (channel / head_dim))  # [hd/2]
    angles = torch.outer(torch.arange(num_frames, device=device, dtype=torch.float32), frequencies)  # [T, hd/2]
    return torch.cos(angles), torch.sin(angles)


def rotate(x: torch.Tensor, rotary: Rotary) -> torch.Tensor:
    """Queries or keys [..., T, hd] turned by their frame: channel pairs (2i, 2i+1) as complex numbers.

    Computed in float32 (as audiocraft's complex64 product) and returned in ``x``'s dtype.
    """
    cos, sin = rotary
    real, imag = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # [..., T, hd/2] each
    turned = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1)
    return turned.flatten(-2).to(x.dtype)


def restricted_context_mask(num_frames: int, context: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean [T, T]: query i may attend key j iff |i - j| <= context (True = attend)."""
    frames = torch.arange(num_frames, device=device)
    return (frames[:, None] - frames[None, :]).abs() <= context


@functools.lru_cache(maxsize=32)
def restricted_context_blocks(num_frames: int, context: int, block: int,
                              device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean [N, block, block + 2*context]: `restricted_context_mask` cut into query blocks.

    Block n holds queries [n*block, (n+1)*block) and the keys [n*block - context,
    (n+1)*block + context) around them. Keys outside [0, T) are padding and never attended;
    queries past T are padding too and attend every key, so that no row is fully masked (a fully
    masked row would be NaN); their outputs are dropped. Cached (read-only): every layer of every
    forward at a length asks for the same mask, and building it took ~2% of the tiny model's loop.
    """
    num_blocks = -(-num_frames // block)
    query = torch.arange(num_blocks * block, device=device).view(num_blocks, block, 1)
    key = (torch.arange(num_blocks, device=device) * block - context).view(num_blocks, 1, 1) \
        + torch.arange(block + 2 * context, device=device)  # [N, 1, W]
    inside = (key >= 0) & (key < num_frames)
    return ((query - key).abs() <= context) & inside | (query >= num_frames)


# ---------------------------------------------------------------------------------- attention
class Attention(nn.Module):
    """Multi-head attention with a packed q/k/v projection (PyTorch/audiocraft ``in_proj`` layout)."""

    def __init__(self, dim: int, num_heads: int, bias: bool, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        # Rows [0, D) project queries, [D, 2D) keys, [2D, 3D) values.
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        self.packed: nn.Module | None = None  # int8 decoding: the packed projection, quantised (`precision`)
        # audiocraft keeps nn.Linear's default init for the packed projection (its depthwise
        # init only reaches nn.Linear submodules): uniform in ±1/sqrt(fan_in).
        bound = 1 / math.sqrt(dim)
        nn.init.uniform_(self.in_proj_weight, -bound, bound)

    def _project(self, x: torch.Tensor, first: int, count: int) -> list[torch.Tensor]:
        """``x`` [B, T, D] through blocks ``first .. first+count`` (0 = q, 1 = k, 2 = v), split into heads."""
        dim = self.in_proj_weight.shape[1]
        rows = slice(first * dim, (first + count) * dim)
        if self.packed is not None:
            y = self.packed(x, rows)  # [B, T, count*D]
        else:
            bias = None if self.in_proj_bias is None else self.in_proj_bias[rows]
            y = F.linear(x, self.in_proj_weight[rows], bias)  # [B, T, count*D]
        batch, frames, _ = y.shape
        y = y.view(batch, frames, count, self.num_heads, dim // self.num_heads)
        return list(y.permute(2, 0, 3, 1, 4).unbind(0))  # count x [B, H, T, head_dim]

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """Queries of ``x`` [B, T, D]: [B, H, T, head_dim]."""
        return self._project(x, 0, 1)[0]

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``source`` [B, L, D], each [B, H, L, head_dim]."""
        key, value = self._project(source, 1, 2)
        return key, value

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               mask: torch.Tensor | None) -> torch.Tensor:
        """Scaled dot-product attention, heads merged and projected: [B, T, D]."""
        return self._merge_heads(self._sdpa(query, key, value, mask))

    def self_queries_keys_values(self, x: torch.Tensor, rotary: Rotary | None = None) -> list[torch.Tensor]:
        """Queries, keys and values of ``x`` [B, T, D] for self-attention, each [B, H, T, hd].

        ``rotary`` (`rotary_tables` of T frames): queries and keys turned by their frame.
        """
        query, key, value = self._project(x, 0, 3)
        if rotary is not None:
            query, key = rotate(query, rotary), rotate(key, rotary)
        return [query, key, value]

    def self_attention(self, x: torch.Tensor, mask: torch.Tensor | None, rotary: Rotary | None = None) -> torch.Tensor:
        """Attention of ``x`` [B, T, D] over itself, optionally restricted by a boolean [T, T] mask."""
        return self.attend(*self.self_queries_keys_values(x, rotary), mask)

    def blocked_self_attention(self, x: torch.Tensor, context: int, block: int = ATTENTION_BLOCK,
                               rotary: Rotary | None = None) -> torch.Tensor:
        """`self_attention` within ±``context`` frames, scoring only each query block's key window.

        Same maths as the [T, T] band mask (paper §3.2), but T * (block + 2 * context) scores
        instead of T * T; results agree to float rounding.
        """
        query, key, value = self.self_queries_keys_values(x, rotary)  # [B, H, T, hd]
        batch, heads, frames, head_dim = query.shape
        num_blocks, window = -(-frames // block), block + 2 * context
        pad = num_blocks * block - frames
        query = F.pad(query, (0, 0, 0, pad)).view(batch, heads, num_blocks, block, head_dim)
        # Overlapping key/value windows as strided views: [B, H, N, W, hd].
        key, value = (F.pad(t, (0, 0, context, context + pad)).unfold(2, window, block).transpose(-1, -2)
                      for t in (key, value))
        mask = restricted_context_blocks(frames, context, block, x.device)  # [N, block, W]
        out = self._sdpa(query, key, value, mask)  # [B, H, N, block, hd]
        return self._merge_heads(out.reshape(batch, heads, num_blocks * block, head_dim)[:, :, :frames])

    def _sdpa(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              mask: torch.Tensor | None) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=p)

    def _merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        """[B, H, T, hd] -> heads concatenated and projected: [B, T, D]."""
        batch, _, frames, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, -1))


# -------------------------------------------------------------------------------------- layer
class Layer(nn.Module):
    """One pre-norm block: self-attention, cross-attention, feed-forward, each residual.

    Attributes are declared in audiocraft's order so the exported state dict's key order
    matches the published checkpoints.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim, eps = config.dim, config.norm_eps
        hidden = int(config.hidden_scale * dim)  # audiocraft: int(hidden_scale * dim)
        self.dropout = config.dropout
        self.self_attn = Attention(dim, config.num_heads, config.bias_attn, config.dropout)
        self.linear1 = nn.Linear(dim, hidden, bias=config.bias_ff)
        self.linear2 = nn.Linear(hidden, dim, bias=config.bias_ff)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.cross_attention = Attention(dim, config.num_heads, config.bias_attn, config.dropout)
        self.norm_cross = nn.LayerNorm(dim, eps=eps)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.dropout, self.training)

    def forward(self, x: torch.Tensor, self_mask: torch.Tensor | None,
                cross_kv: tuple[torch.Tensor, torch.Tensor], blocked_context: int | None = None,
                rotary: Rotary | None = None) -> torch.Tensor:
        """[B, T, D] -> [B, T, D]; ``blocked_context``: restricted attention computed block by block;
        ``rotary``: rotary positions of self-attention (`rotary_tables`)."""
        hidden = self.norm1(x)
        if blocked_context is None:
            x = x + self._drop(self.self_attn.self_attention(hidden, self_mask, rotary))
        else:
            x = x + self._drop(self.self_attn.blocked_self_attention(hidden, blocked_context, rotary=rotary))
        query = self.cross_attention.queries(self.norm_cross(x))  # [B, H, T, hd]
        # No key padding mask: audiocraft lets padded (zero) condition positions take weight.
        x = x + self._drop(self.cross_attention.attend(query, *cross_kv, mask=None))
        hidden = self._drop(F.gelu(self.linear1(self.norm2(x))))  # exact (erf) GELU, as nn.TransformerEncoderLayer
        return x + self._drop(self.linear2(hidden))


# -------------------------------------------------------------------------------------- model
class MagnetTransformer(nn.Module):
    """MAGNeT's non-autoregressive transformer over K parallel codebooks (arXiv 2401.04577)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        rows = config.cardinality + 1  # the extra last row embeds the mask token
        self.emb = nn.ModuleList([nn.Embedding(rows, config.dim) for _ in range(config.num_codebooks)])
        self.layers = nn.ModuleList([Layer(config) for _ in range(config.num_layers)])
        self.out_norm = nn.LayerNorm(config.dim, eps=config.norm_eps)
        self.linears = nn.ModuleList(
            [nn.Linear(config.dim, config.cardinality, bias=config.bias_proj) for _ in range(config.num_codebooks)]
        )
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """audiocraft's MAGNeT initialisation (weight_init gaussian, depthwise_init current, zero biases).

        Linear and embedding weights ~ truncated N(0, std) in ±3 std with std = 1/sqrt(fan_in),
        divided by sqrt(2 * depth) inside layer ``depth`` (1-based); LayerNorms stay at 1 and 0.
        """
        def gaussian(weight: torch.Tensor, fan_in: int, depth: int | None = None) -> None:
            std = 1 / math.sqrt(fan_in) / (math.sqrt(2 * depth) if depth else 1)
            nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-3 * std, b=3 * std)

        for emb in self.emb:
            gaussian(emb.weight, self.config.dim)
        for depth, layer in enumerate(self.layers, start=1):
            for module in layer.modules():
                if isinstance(module, nn.Linear):
                    gaussian(module.weight, module.in_features, depth)
                    if module.bias is not None:
                        module.bias.zero_()
        for linear in self.linears:
            gaussian(linear.weight, self.config.dim)
            if linear.bias is not None:
                linear.bias.zero_()

    @property
    def mask_id(self) -> int:
        """The mask token id (= cardinality)."""
        return self.config.mask_id

    # -- cross-attention cache ----------------------------------------------------------------
    def cross_attention_cache(self, condition: torch.Tensor) -> CrossCache:
        """Per-layer cross-attention keys/values of ``condition`` [B, L, D], reusable across steps."""
        condition = condition.to(self._dtype())
        return [layer.cross_attention.keys_values(condition) for layer in self.layers]

    # -- forward ------------------------------------------------------------------------------
    def forward(self, codes: torch.Tensor, condition: torch.Tensor | None, stage: int, *,
                stage_only: bool = False, cross_cache: CrossCache | None = None,
                causal_prefix: int = 0, blocked_attention: bool = BLOCKED_ATTENTION,
                check_values: bool = True) -> torch.Tensor:
        """Logits [B, K, T, card] for ``codes`` [B, K, T] at ``stage`` ([B, 1, T, card] if ``stage_only``).

        Args:
            codes: int64 codes in [0, cardinality], the mask id marking positions to predict.
            condition: what to cross-attend to, [B, L, D]; may be None when ``cross_cache`` is given.
            stage: the codebook being decoded; selects the self-attention context.
            stage_only: compute only the head of codebook ``stage``.
            cross_cache: ``cross_attention_cache(condition)``, to skip recomputing keys/values.
            causal_prefix: Hybrid-MAGNeT (paper §3.4): the first this many positions are an
                autoregressive prefix that attends causally and never to later positions; the
                positions after it attend as usual (the prefix included). 0 = plain MAGNeT.
            blocked_attention: compute restricted-context attention block by block instead of
                masking a [T, T] score matrix (same maths, less work; see `ATTENTION_BLOCK`).
            check_values: refuse codes outside [0, mask id]. Decoders that build the codes
                themselves turn it off: the check reads the codes back to the host (a GPU sync).
        Returns:
            Float logits in the model's dtype.
        Raises:
            UsageError: on a shape, stage or cache that does not fit the model.
        """
        self._check_inputs(codes, condition, stage, cross_cache, check_values)
        if not 0 <= causal_prefix <= codes.shape[-1]:
            raise UsageError(f"causal_prefix must be in [0, {codes.shape[-1]}], got {causal_prefix}")
        if cross_cache is None:
            cross_cache = self.cross_attention_cache(condition)

        # -- embeddings: sum of the K codebook embeddings, plus positions ---------------------
        _, num_codebooks, frames = codes.shape
        x = self.emb[0](codes[:, 0])  # [B, T, D]
        for k in range(1, num_codebooks):
            x = x + self.emb[k](codes[:, k])
        if self.config.sin_positions:
            # bfloat16 holds integers exactly only up to 256: its positions (and phases) come from float32.
            position_dtype = torch.float32 if x.dtype == torch.bfloat16 else x.dtype
            # audiocraft's arithmetic: x + positional_scale * positions (1.0 * p is p, bit for bit)
            x = x + self.config.positional_scale * sin_embedding(frames, self.config.dim, self.config.max_period,
                                                                 device=x.device, dtype=position_dtype).to(x.dtype)
        rotary = self.rotary(frames, x.device) if self.config.rotary_positions else None

        # -- transformer layers ---------------------------------------------------------------
        blocked = self._blocked_context(stage, frames, causal_prefix) if blocked_attention else None
        self_mask = None if blocked is not None else self._self_attention_mask(stage, frames, x.device, causal_prefix)
        for layer, cross_kv in zip(self.layers, cross_cache):
            x = layer(x, self_mask, cross_kv, blocked, rotary)  # [B, T, D]
        x = self.out_norm(x)

        # -- output heads ---------------------------------------------------------------------
        if stage_only:  # one head: no stack, which would copy the logits
            return self.linears[stage](x).unsqueeze(1)  # [B, 1, T, card]
        return torch.stack([self.linears[k](x) for k in range(num_codebooks)], dim=1)  # [B, K, T, card]

    # -- helpers ------------------------------------------------------------------------------
    def rotary(self, frames: int, device: torch.device | str = "cpu") -> Rotary:
        """`rotary_tables` of this model for ``frames`` positions."""
        config = self.config
        return rotary_tables(frames, config.dim // config.num_heads, config.max_period, device)

    def _self_attention_mask(self, stage: int, frames: int, device: torch.device,
                             causal_prefix: int = 0) -> torch.Tensor | None:
        """None (full attention) for stage 0 or context -1; else the ±context band (paper §3.2).

        With a ``causal_prefix`` of N, rows [0, N) become causal (Hybrid-MAGNeT, paper §3.4).
        """
        context = self.config.subcodes_context
        band = None if stage == 0 or context < 0 else restricted_context_mask(frames, context, device)
        if causal_prefix == 0:
            return band
        mask = torch.ones(frames, frames, dtype=torch.bool, device=device) if band is None else band.clone()
        # Prefix rows see themselves and earlier positions only, so the prefix's predictions never
        # depend on what follows it and it can be decoded token by token with a cache.
        mask[:causal_prefix] = torch.ones(causal_prefix, frames, dtype=torch.bool, device=device).tril()
        return mask

    def _blocked_context(self, stage: int, frames: int, causal_prefix: int) -> int | None:
        """The context for block-by-block restricted attention, or None where a mask is needed or cheaper."""
        context = self.config.subcodes_context
        if stage == 0 or context < 0 or causal_prefix:
            return None
        # With at most one block of queries the window spans every frame: nothing to save.
        return context if frames > ATTENTION_BLOCK + 2 * context else None

    def _dtype(self) -> torch.dtype:
        return self.out_norm.weight.dtype

    def _check_inputs(self, codes: torch.Tensor, condition: torch.Tensor | None, stage: int,
                      cross_cache: CrossCache | None, check_values: bool) -> None:
        config = self.config
        if codes.dim() != 3 or codes.shape[1] != config.num_codebooks:
            raise UsageError(f"codes must be [B, {config.num_codebooks}, T], got {list(codes.shape)}")
        if codes.dtype not in (torch.int64, torch.int32, torch.int16):
            raise UsageError(f"codes must be an integer tensor, got {codes.dtype}")
        if check_values and codes.numel() and (codes.min() < 0 or codes.max() > config.mask_id):
            raise UsageError(f"codes must lie in [0, {config.mask_id}] ({config.mask_id} = mask)")
        if not 0 <= stage < config.num_codebooks:
            raise UsageError(f"stage must be in [0, {config.num_codebooks}), got {stage}")
        if cross_cache is None:
            if condition is None:
                raise UsageError("pass a condition [B, L, D] or its cross_attention_cache")
            if condition.dim() != 3 or condition.shape[0] != codes.shape[0] or condition.shape[2] != config.dim:
                raise UsageError(
                    f"condition must be [{codes.shape[0]}, L, {config.dim}], got {list(condition.shape)}"
                )
        elif len(cross_cache) != config.num_layers or cross_cache[0][0].shape[0] != codes.shape[0]:
            raise UsageError(
                f"cross_cache must hold {config.num_layers} layers for a batch of {codes.shape[0]}"
            )

