"""magnetkit built-in plugin: the ``clap`` conditioner (frozen transformers ClapModel + learned projection).

Registering imports only the torch-free config; the conditioner's module loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_clap.config import ClapConditionerConfig

# Public names whose module imports torch: imported on first use. name -> module.
_LAZY: dict[str, str] = {name: "magnetkit_clap.conditioner"
                         for name in ("ClapBackbone", "ClapConditioner", "factory", "load_clap")}

__all__ = ["ClapBackbone", "ClapConditioner", "ClapConditionerConfig", "factory", "load_clap",
           "register_conditioners"]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_clap(config: ClapConditionerConfig, *, output_dim: int) -> Any:
    """CLAP text (or audio) embedding, projected to the transformer width (audiocraft's CLAP conditioner)."""
    from magnetkit_clap.conditioner import factory

    return factory(config, output_dim=output_dim)


@hookimpl
def register_conditioners(register) -> None:
    """Register the ``clap`` conditioner."""
    register("clap", _build_clap, config=ClapConditionerConfig)
