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
from magnetkit.interfaces import Embedder
from magnetkit.interfaces import Codec, Condition, Conditioner, MaskingScheduler, Rescorer, Sampler
from magnetkit.model.config import ModelConfig
from magnetkit.registry import build, get_registry

__version__ = "0.2.0.dev0"  # the one source of the version (pyproject reads it; CHANGELOG.md)


# Public names whose modules are heavy (torch model code): imported on first use, so
# `import magnetkit` and plugin registration stay fast. name -> module that defines it.
_LAZY: dict[str, str] = {
    "load": "magnetkit.loading",
    "Pipeline": "magnetkit.pipeline",
    "Generation": "magnetkit.pipeline",
    "add_command": "magnetkit.cli",
    "read_audio": "magnetkit.audio",
    "write_audio": "magnetkit.audio",
    "recipe_dirs": "magnetkit.recipe",
    "HybridGenerator": "magnetkit.hybrid.generate",
    "evaluate": "magnetkit.evaluation",
    "EvalReport": "magnetkit.evaluation",
    "resample": "magnetkit.audio",
    "from_pretrained": "magnetkit.hub",
    "load_complete": "magnetkit.hub",
    # the contract of the model the engine decodes with
    "CrossCache": "magnetkit.interfaces",
    "DecodingModel": "magnetkit.interfaces",
    # reusable bases that plugins subclass
    "DrawingConfig": "magnetkit.component_config",
    "MIN_TEMPERATURE": "magnetkit.sampling",
    "SamplerConfig": "magnetkit.component_config",
    "TemperatureSampler": "magnetkit.sampling",
    "annealed_temperature": "magnetkit.sampling",
    "SchedulerConfig": "magnetkit.component_config",
    "SpanScheduler": "magnetkit.scheduling",
    "WrappedCodec": "magnetkit.codecs",
    "ChunkedDecoding": "magnetkit.component_config",
    # span masking maths (paper §3.2, App. C) for schedulers that do not subclass SpanScheduler
    "expected_mask_rate": "magnetkit.spans",
    "extend_spans": "magnetkit.spans",
    "least_probable_spans": "magnetkit.spans",
    "num_spans_table": "magnetkit.spans",
    "top_units_mask": "magnetkit.spans",
    # helpers plugins share: weights from a folder or the hub, audio, recipes, data, decoding
    "local_path": "magnetkit.hub",
    "looks_like_hub_id": "magnetkit.hub",
    "convert_audio": "magnetkit.audio",
    "load_recipe": "magnetkit.recipe",
    "read_items": "magnetkit.train.manifest",
    "train_model": "magnetkit.train.loop",
    "training_seconds": "magnetkit.train.metrics",
    "guide": "magnetkit.engine",
    "JIT_OPTIONS": "magnetkit.kernels",
    # Hybrid-MAGNeT (paper §3.4): MusicGen's delay pattern and token-space checks
    "delay": "magnetkit.hybrid.pattern",
    "undelay": "magnetkit.hybrid.pattern",
    "teacher_forcing_inputs": "magnetkit.hybrid.pattern",
    "token_space_problems": "magnetkit.hybrid.autoregressive",
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
    "ChunkedDecoding",
    "Codec",
    "ComponentNotFoundError",
    "Condition",
    "Conditioner",
    "CrossCache",
    "DecodeOptions",
    "DecodingModel",
    "DrawingConfig",
    "Embedder",
    "EvalReport",
    "Generation",
    "HubUnavailableError",
    "HybridGenerator",
    "JIT_OPTIONS",
    "MIN_TEMPERATURE",
    "MagnetkitError",
    "MaskingScheduler",
    "ModelConfig",
    "Pipeline",
    "PluginError",
    "RecipeError",
    "Rescorer",
    "Sampler",
    "SamplerConfig",
    "SchedulerConfig",
    "SpanScheduler",
    "TemperatureSampler",
    "UsageError",
    "WrappedCodec",
    "add_command",
    "annealed_temperature",
    "build",
    "convert_audio",
    "delay",
    "evaluate",
    "expected_mask_rate",
    "extend_spans",
    "from_pretrained",
    "get_registry",
    "guide",
    "hookimpl",
    "least_probable_spans",
    "load",
    "load_complete",
    "load_recipe",
    "local_path",
    "looks_like_hub_id",
    "num_spans_table",
    "pick_batch_size",
    "read_audio",
    "read_items",
    "recipe_dirs",
    "resample",
    "teacher_forcing_inputs",
    "token_space_problems",
    "top_units_mask",
    "train_model",
    "training_seconds",
    "undelay",
    "write_audio",
]
