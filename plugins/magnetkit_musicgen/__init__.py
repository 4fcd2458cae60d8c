"""magnetkit built-in plugin: MusicGen (transformers) as rescorer and hybrid prefix model, ``musicgen``.

Paper §3.3 (rescoring, Eq. 5) and §3.4 (Hybrid-MAGNeT), which audiocraft never released.
Registering imports only the torch-free config; the model's module loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_musicgen.config import MusicgenConfig

# Public names whose module imports torch: imported on first use. name -> module.
_LAZY: dict[str, str] = {name: "magnetkit_musicgen.model" for name in
                         ("MusicgenModel", "MusicgenSession", "build_musicgen", "codebook_mismatch", "load_musicgen")}

__all__ = [
    "MusicgenConfig",
    "MusicgenModel",
    "MusicgenSession",
    "build_musicgen",
    "codebook_mismatch",
    "load_musicgen",
    "register_rescorers",
]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_musicgen(config: MusicgenConfig, *, pipeline: Any = None, role: str = "rescorer") -> Any:
    """MusicGen as rescorer (paper Eq. 5) or a hybrid's autoregressive model; see `build_musicgen`."""
    from magnetkit_musicgen.model import build_musicgen

    return build_musicgen(config, pipeline=pipeline, role=role)


@hookimpl
def register_rescorers(register) -> None:
    """Register the ``musicgen`` rescorer (also usable as a two-model hybrid's autoregressive model)."""
    register("musicgen", _build_musicgen, config=MusicgenConfig,
             description="MusicGen's teacher-forced token probabilities mixed into span selection (paper Eq. 5)")
