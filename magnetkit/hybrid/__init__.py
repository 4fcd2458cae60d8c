"""Hybrid-MAGNeT (paper §3.4): autoregressive prefix, parallel rest; one model or two.

The recipe module imports `magnetkit.hybrid.config`, so everything else is imported on first
use (as `magnetkit` does) to keep that import light and free of cycles.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AutoregressiveModel": "magnetkit.hybrid.autoregressive",
    "AutoregressiveSession": "magnetkit.hybrid.autoregressive",
    "check_token_space": "magnetkit.hybrid.autoregressive",
    "decode_prefix": "magnetkit.hybrid.autoregressive",
    "sample_top_k": "magnetkit.hybrid.autoregressive",
    "token_space_problems": "magnetkit.hybrid.autoregressive",
    "AutoregressiveSection": "magnetkit.hybrid.config",
    "HybridConfig": "magnetkit.hybrid.config",
    "HybridGeneration": "magnetkit.hybrid.generate",
    "HybridGenerator": "magnetkit.hybrid.generate",
    "load_hybrid": "magnetkit.hybrid.generate",
    "HybridLoss": "magnetkit.hybrid.objective",
    "hybrid_loss": "magnetkit.hybrid.objective",
    "sample_prefix_frames": "magnetkit.hybrid.objective",
    "delay": "magnetkit.hybrid.pattern",
    "pattern_mask": "magnetkit.hybrid.pattern",
    "prefix_block": "magnetkit.hybrid.pattern",
    "teacher_forcing_inputs": "magnetkit.hybrid.pattern",
    "undelay": "magnetkit.hybrid.pattern",
    "MagnetSession": "magnetkit.hybrid.single",
    "PrefixedModel": "magnetkit.hybrid.single",
    "PrefixedRescorer": "magnetkit.hybrid.single",
}

__all__ = [
    "AutoregressiveModel",
    "AutoregressiveSection",
    "AutoregressiveSession",
    "HybridConfig",
    "HybridGeneration",
    "HybridGenerator",
    "HybridLoss",
    "MagnetSession",
    "PrefixedModel",
    "PrefixedRescorer",
    "check_token_space",
    "decode_prefix",
    "delay",
    "hybrid_loss",
    "load_hybrid",
    "pattern_mask",
    "prefix_block",
    "sample_prefix_frames",
    "sample_top_k",
    "teacher_forcing_inputs",
    "token_space_problems",
    "undelay",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'magnetkit.hybrid' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
