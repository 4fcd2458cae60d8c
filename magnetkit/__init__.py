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
    # the contract of the model the engine decodes with
    "CrossCache": "magnetkit.interfaces",
    "DecodingModel": "magnetkit.interfaces",
    # reusable bases that plugins subclass
    "DrawingConfig": "magnetkit.sampling",
    "MIN_TEMPERATURE": "magnetkit.sampling",
    "SamplerConfig": "magnetkit.sampling",
    "TemperatureSampler": "magnetkit.sampling",
    "annealed_temperature": "magnetkit.sampling",
    "SchedulerConfig": "magnetkit.scheduling",
    "SpanScheduler": "magnetkit.scheduling",
    "WrappedCodec": "magnetkit.codecs",
    "ChunkedDecoding": "magnetkit.codecs",
    # span masking maths (paper §3.2, App. C) for schedulers that do not subclass SpanScheduler
    "expected_mask_rate": "magnetkit.spans",
    "extend_spans": "magnetkit.spans",
    "least_probable_spans": "magnetkit.spans",
    "num_spans_table": "magnetkit.spans",
    "top_units_mask": "magnetkit.spans",
    # helpers plugins share: weights from a folder or the hub, audio, recipes, data, decoding
    "from_pretrained": "magnetkit.hub",
    "load_complete": "magnetkit.hub",
    "local_path": "magnetkit.hub",
    "looks_like_hub_id": "magnetkit.hub",
    "convert_audio": "magnetkit.audio",
    "read_audio": "magnetkit.audio",
    "load_recipe": "magnetkit.recipe",
    "read_items": "magnetkit.train.manifest",
    "train_model": "magnetkit.train.loop",
    "guide": "magnetkit.engine",
    "JIT_OPTIONS": "magnetkit.kernels",
    # Hybrid-MAGNeT (paper §3.4): MusicGen's delay pattern and token-space checks
    "delay": "magnetkit.hybrid.pattern",
    "undelay": "magnetkit.hybrid.pattern",
    "teacher_forcing_inputs": "magnetkit.hybrid.pattern",
    "token_space_problems": "magnetkit.hybrid.autoregressive",
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
    "CrossCache",
    "DecodingModel",
    "DrawingConfig",
    "MIN_TEMPERATURE",
    "SamplerConfig",
    "TemperatureSampler",
    "annealed_temperature",
    "SchedulerConfig",
    "SpanScheduler",
    "WrappedCodec",
    "ChunkedDecoding",
    "expected_mask_rate",
    "extend_spans",
    "least_probable_spans",
    "num_spans_table",
    "top_units_mask",
    "from_pretrained",
    "load_complete",
    "local_path",
    "looks_like_hub_id",
    "convert_audio",
    "read_audio",
    "load_recipe",
    "read_items",
    "train_model",
    "guide",
    "JIT_OPTIONS",
    "delay",
    "undelay",
    "teacher_forcing_inputs",
    "token_space_problems",
]
