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

__all__ = [
    "AudioError",
    "CheckpointError",
    "Codec",
    "ComponentNotFoundError",
    "Condition",
    "Conditioner",
    "HubUnavailableError",
    "MagnetkitError",
    "MaskingScheduler",
    "ModelConfig",
    "PluginError",
    "RecipeError",
    "Rescorer",
    "Sampler",
    "UsageError",
    "build",
    "get_registry",
    "hookimpl",
]
