"""``decode.precision``: the transformer converted to bfloat16/float16 or its linear layers to int8.

Measured on this project's CPU (one thread, a 996 x 1024 x 4096 linear layer, 2026-12-02):
fp32 100 ms; bfloat16 weights and activations 26 ms; fp32 under ``torch.autocast(bfloat16)``
32 ms (it re-casts the weights at every call), so bfloat16 converts the model. Int8: torch's
``quantize_dynamic`` (deprecated since torch 2.10) 28 ms, torchao 0.18's
``Int8DynamicActivationInt8WeightConfig`` 31 ms (and a 7 s import), `Int8Linear` below 14 ms:
per-row activation scales, ``torch._int_mm`` (VNNI) and one rescaling pass. The codec and the
conditioner stay float32.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from magnetkit.decoding import PRECISIONS
from magnetkit.errors import RecipeError, UsageError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_WARNED: set[str] = set()


# ------------------------------------------------------------------------ int8 linear layers
class Int8Linear(nn.Module):
    """A float linear layer with int8 weights (one scale per output row) and per-row int8 inputs.

    ``y = (q(x) @ q(W).T) * s_x * s_W + b``: symmetric absmax quantisation, x's scale per row
    computed at every call (dynamic quantisation), int32 accumulation in ``torch._int_mm``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        weight = weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127  # [N]
        self.register_buffer("weight", torch.round(weight / scale[:, None]).to(torch.int8))  # [N, K]
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        """The quantised copy of an ``nn.Linear``."""
        return cls(linear.weight, linear.bias)

    def forward(self, x: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``x`` [..., K] -> [..., N] float32 (or only the output rows ``rows``)."""
        weight, scale, bias = self.weight, self.scale, self.bias
        if rows is not None:
            weight, scale, bias = weight[rows], scale[rows], None if bias is None else bias[rows]
        shape = x.shape
        x = x.reshape(-1, shape[-1]).float()
        if x.shape[0] <= 16 or x.device.type != "cpu":  # _int_mm's shape limits: dequantised float matmul
            out = F.linear(x, weight.float() * scale[:, None], bias)
            return out.reshape(*shape[:-1], -1)
        x_scale = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127  # [M, 1]
        quantised = torch.round(x / x_scale).to(torch.int8)
        out = torch._int_mm(quantised, weight.t()).float().mul_(x_scale).mul_(scale)  # [M, N]
        if bias is not None:
            out.add_(bias)
        return out.reshape(*shape[:-1], -1)


def quantise_linears(model: nn.Module) -> nn.Module:
    """Every linear layer of ``model`` (and attention's packed projections) to `Int8Linear`, in place."""
    from magnetkit.model.transformer import Attention

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, Int8Linear.from_linear(child))
        if isinstance(module, Attention) and module.packed is None:
            weight = module.in_proj_weight
            module.packed = Int8Linear(weight, module.in_proj_bias)
            # The float copy is no longer read: keep an empty parameter so `dim` is still known.
            module.in_proj_weight = nn.Parameter(weight.new_empty(0, weight.shape[1]), requires_grad=False)
            module.in_proj_bias = None
    return model


# ------------------------------------------------------------------------------ applying
def model_precision(model: nn.Module) -> str:
    """The precision a transformer runs at now (``float32`` for models magnetkit did not convert)."""
    return getattr(model, "magnetkit_precision", "float32")


def prepare_model(model: nn.Module, precision: str, device: torch.device | str) -> nn.Module:
    """Convert ``model`` in place to run at ``precision`` on ``device``; returns it.

    Raises:
        RecipeError: float16 on a CPU, or a model already converted to another precision.
    """
    device = torch.device(device)
    current = model_precision(model)
    if precision == current:
        return model
    if precision not in PRECISIONS:
        raise RecipeError([f"decode.precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}"])
    if current != "float32":
        raise RecipeError([f"decode.precision: the transformer already runs at {current}; "
                           f"load it again to decode at {precision}"])
    if precision == "float16" and device.type == "cpu":
        raise RecipeError(["decode.precision: float16 runs only on a GPU; on a CPU use bfloat16 or int8"])
    if not isinstance(model, nn.Module):
        raise UsageError(f"decode.precision={precision} needs a torch module to convert, got {type(model).__name__}")
    warn_if_slow(precision, device)
    if precision == "int8":
        quantise_linears(model)
    else:
        model.to(DTYPES[precision])
    model.magnetkit_precision = precision
    return model


# ------------------------------------------------------------------- what this CPU can do
@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def slow_reason(precision: str, device: torch.device | str = "cpu") -> str | None:
    """Why ``precision`` will be slow on this machine's CPU, or None if it has the instructions for it."""
    if torch.device(device).type != "cpu" or precision == "float32":
        return None
    flags, capability = cpu_flags(), torch.backends.cpu.get_cpu_capability()
    if precision == "bfloat16" and not flags & {"avx512_bf16", "amx_bf16"}:
        return (f"this CPU has no bfloat16 instructions (no avx512_bf16/amx_bf16; torch uses {capability}): "
                "bfloat16 matmuls were ~3x slower than float32 on such a CPU")
    if precision == "int8" and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return (f"this CPU has no int8 dot-product instructions (no avx512_vnni/avx_vnni/amx_int8; torch uses "
                f"{capability}): int8 may be no faster than float32")
    return None


def warn_if_slow(precision: str, device: torch.device | str) -> None:
    """Log once per precision when this machine lacks the instructions that make it fast."""
    reason = slow_reason(precision, device)
    if reason is not None and precision not in _WARNED:
        _WARNED.add(precision)
        log.warning("decode.precision=%s: %s", precision, reason)
