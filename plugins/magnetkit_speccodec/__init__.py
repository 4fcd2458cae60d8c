"""magnetkit built-in plugin: the ``speccodec`` codec and its fitting/fidelity commands.

``speccodec`` is residual k-means quantisation over a fixed STFT representation, decoded with
Griffin-Lim: it fits in minutes on a CPU and keeps pitch and onsets of the procedural clips of
`magnetkit_synth` (see `magnetkit_speccodec.codec` for the design and why it is not neural).
Registering imports only the torch-free configs and the command line; torch loads on use.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_speccodec.config import FitConfig, SpecCodecConfig, SpecParams

# Public names whose modules import torch: imported on first use. name -> module.
_LAZY: dict[str, str] = {
    "SpecCodec": "magnetkit_speccodec.codec",
    "factory": "magnetkit_speccodec.codec",
    "load_speccodec": "magnetkit_speccodec.codec",
    "fit_codec": "magnetkit_speccodec.fit",
}

__all__ = ["FitConfig", "SpecCodec", "SpecCodecConfig", "SpecParams", "factory", "fit_codec", "load_speccodec",
           "register_codecs", "register_commands"]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_speccodec(config: SpecCodecConfig) -> Any:
    """Spectral RVQ codec for magnetkit's synthetic sounds: 16 kHz mono, 50 Hz, 4 x 512 codes, no neural net."""
    from magnetkit_speccodec.codec import factory

    return factory(config)


@hookimpl
def register_codecs(register) -> None:
    """Register the ``speccodec`` codec."""
    register("speccodec", _build_speccodec, config=SpecCodecConfig)


@hookimpl
def register_commands(subparsers) -> None:
    """Add ``fit-codec`` and ``codec-fidelity``."""
    from magnetkit_speccodec.commands import add_commands

    add_commands(subparsers)
