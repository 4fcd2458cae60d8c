"""magnetkit built-in plugin: embedders for evaluation (`magnetkit eval`).

``mel`` needs no weights; ``clap``, ``ast``, ``encodec`` and ``vggish`` load official weights by
hub id or local folder. Registering imports only the torch-free configs; an embedder's module
(torch, transformers) loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_embedders.config import (
    AstEmbedderConfig,
    ClapEmbedderConfig,
    CodecEmbedderConfig,
    MelEmbedderConfig,
    VggishEmbedderConfig,
)

__all__ = ["AstEmbedderConfig", "ClapEmbedderConfig", "CodecEmbedderConfig", "MelEmbedder", "MelEmbedderConfig",
           "VggishEmbedderConfig", "register_embedders"]


def __getattr__(name: str) -> Any:
    """`MelEmbedder` on first use (its module imports torch)."""
    if name == "MelEmbedder":
        return importlib.import_module("magnetkit_embedders.mel").MelEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lazy_factory(module: str):
    """A factory that imports ``magnetkit_embedders.<module>`` when an embedder is built."""
    def factory(config: Any, **context: Any) -> Any:
        return importlib.import_module(f"magnetkit_embedders.{module}").factory(config, **context)

    factory.__doc__ = f"Build the ``{module}`` embedder (imports its module on call)."
    return factory


@hookimpl
def register_embedders(register) -> None:
    """Register the built-in embedders."""
    register("mel", _lazy_factory("mel"), config=MelEmbedderConfig,
             description="log-mel frame statistics: weight-free, deterministic (the default)")
    register("clap", _lazy_factory("clap"), config=ClapEmbedderConfig,
             description="CLAP audio and text towers (transformers): CLAP score, FAD on CLAP vectors")
    register("ast", _lazy_factory("ast"), config=AstEmbedderConfig,
             description="AudioSet label probabilities from transformers' AST classifier (KL)")
    register("encodec", _lazy_factory("encodec"), config=CodecEmbedderConfig,
             description="a codec's continuous latents (codecs that offer latents())")
    register("vggish", _lazy_factory("vggish"), config=VggishEmbedderConfig,
             description="VGGish 128-d embeddings (16 kHz, 0.96 s frames), the classic FAD embedder")
