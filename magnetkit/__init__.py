"""magnetkit: a plugin toolkit for MAGNeT, masked non-autoregressive audio generation."""

from magnetkit.errors import (
    AudioError,
    CheckpointError,
    ComponentNotFoundError,
    HubUnavailableError,
    MagnetkitError,
    PluginError,
    RecipeError,
    UsageError,
)
from magnetkit.hookspecs import hookimpl
from magnetkit.interfaces import Codec, Condition, Conditioner, MaskingScheduler, Rescorer, Sampler
from magnetkit.model.config import ModelConfig
from magnetkit.registry import build, get_registry

__version__ = "0.1.0"


def __getattr__(name: str):
    """Import the generation API on first use (it pulls in the model and checkpoint code)."""
    if name == "load":
        from magnetkit.loading import load

        return load
    if name in ("Pipeline", "Generation"):
        from magnetkit import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'magnetkit' has no attribute {name!r}")


__all__ = [
    "AudioError",
    "CheckpointError",
    "Codec",
    "ComponentNotFoundError",
    "Condition",
    "Generation",
    "Conditioner",
    "HubUnavailableError",
    "MagnetkitError",
    "MaskingScheduler",
    "ModelConfig",
    "PluginError",
    "Pipeline",
    "RecipeError",
    "Rescorer",
    "Sampler",
    "UsageError",
    "build",
    "get_registry",
    "hookimpl",
    "load",
]
