"""magnetkit built-in plugin: MusicGen (transformers) as rescorer and hybrid prefix model, ``musicgen``.

Paper §3.3 (rescoring, Eq. 5) and §3.4 (Hybrid-MAGNeT), which audiocraft never released.
"""

from __future__ import annotations

from magnetkit import hookimpl
from magnetkit_musicgen.model import (
    MusicgenConfig,
    MusicgenModel,
    MusicgenSession,
    build_musicgen,
    codebook_mismatch,
    load_musicgen,
)

__all__ = [
    "MusicgenConfig",
    "MusicgenModel",
    "MusicgenSession",
    "build_musicgen",
    "codebook_mismatch",
    "load_musicgen",
    "register_rescorers",
]


@hookimpl
def register_rescorers(register) -> None:
    """Register the ``musicgen`` rescorer (also usable as a two-model hybrid's autoregressive model)."""
    register("musicgen", build_musicgen, config=MusicgenConfig,
             description="MusicGen's teacher-forced token probabilities mixed into span selection (paper Eq. 5)")
