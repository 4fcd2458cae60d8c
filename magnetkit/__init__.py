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


# Public names whose modules are heavy (torch model code): imported on first use, so
# `import magnetkit` and plugin registration stay fast. name -> module that defines it.
_LAZY: dict[str, str] = {
    "load": "magnetkit.loading",
    "Pipeline": "magnetkit.pipeline",
    "Generation": "magnetkit.pipeline",
    "add_command": "magnetkit.cli",
    "DecodeOptions": "magnetkit.decoding",
    "pick_batch_size": "magnetkit.batching",
}


def __getattr__(name: str):
    """Import a lazily exported public name on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'magnetkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AudioError",
    "CheckpointError",
    "Codec",
    "ComponentNotFoundError",
    "DecodeOptions",
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
    "add_command",
    "build",
    "get_registry",
    "hookimpl",
    "load",
    "pick_batch_size",
]
