"""magnetkit built-in plugin: the ``dac`` codec (transformers' DacModel).

Registering imports only the torch-free config; the codec's module loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_dac.config import DacCodecConfig

# Public names whose module imports torch: imported on first use. name -> module.
_LAZY: dict[str, str] = {name: "magnetkit_dac.codec" for name in ("DacCodec", "factory", "load_dac_model")}

__all__ = ["DacCodec", "DacCodecConfig", "factory", "load_dac_model", "register_codecs"]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_dac(config: DacCodecConfig) -> Any:
    """DAC (transformers): descript/dac_16khz, dac_24khz, dac_44khz, or a transformers folder."""
    from magnetkit_dac.codec import factory

    return factory(config)


@hookimpl
def register_codecs(register) -> None:
    """Register the ``dac`` codec."""
    register("dac", _build_dac, config=DacCodecConfig)
