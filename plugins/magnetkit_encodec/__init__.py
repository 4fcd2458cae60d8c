"""magnetkit built-in plugin: the ``encodec`` codec (transformers' EncodecModel).

Registering imports only the torch-free config; the codec's module loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_encodec.config import EncodecCodecConfig

# Public names whose module imports torch: imported on first use. name -> module.
_LAZY: dict[str, str] = {name: "magnetkit_encodec.codec"
                         for name in ("EncodecCodec", "factory", "load_encodec_model")}

__all__ = ["EncodecCodec", "EncodecCodecConfig", "factory", "load_encodec_model", "register_codecs"]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_encodec(config: EncodecCodecConfig) -> Any:
    """EnCodec (transformers): 24/32/48 kHz hub models, transformers folders, audiocraft codec files."""
    from magnetkit_encodec.codec import factory

    return factory(config)


@hookimpl
def register_codecs(register) -> None:
    """Register the ``encodec`` codec."""
    register("encodec", _build_encodec, config=EncodecCodecConfig)
