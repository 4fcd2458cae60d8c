"""magnetkit built-in plugin: audiocraft's T5 text conditioner, registered as ``t5``.

Registering imports only the torch-free config; the conditioner's module loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_t5.config import T5ConditionerConfig

# Public names whose module imports torch: imported on first use. name -> module.
_LAZY: dict[str, str] = {
    "T5Conditioner": "magnetkit_t5.conditioner",
    "build_t5_conditioner": "magnetkit_t5.conditioner",
}

__all__ = ["T5Conditioner", "T5ConditionerConfig", "build_t5_conditioner"]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_t5(config: T5ConditionerConfig, *, output_dim: int) -> Any:
    """audiocraft's T5 conditioner: frozen T5 encoder + learned projection to ``output_dim``."""
    from magnetkit_t5.conditioner import build_t5_conditioner

    return build_t5_conditioner(config, output_dim=output_dim)


@hookimpl
def register_conditioners(register) -> None:
    """Register the ``t5`` conditioner."""
    register("t5", _build_t5, config=T5ConditionerConfig)
