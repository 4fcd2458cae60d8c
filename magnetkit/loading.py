"""`load(SOURCE)`: a recipe, a magnetkit or audiocraft checkpoint folder, or a hub id -> a Pipeline."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from magnetkit.builder import build_codec, build_modules
from magnetkit.checkpoint import (
    is_audiocraft_checkpoint,
    is_native_checkpoint,
    load_checkpoint,
    read_audiocraft_checkpoint,
)
from magnetkit.errors import CheckpointError, UsageError
from magnetkit.hub import looks_like_hub_id
from magnetkit.model.config import ModelConfig
from magnetkit.pipeline import Pipeline
from magnetkit.recipe import Recipe, apply_overrides, find_recipe, read_yaml, validate_recipe
from magnetkit.registry import KINDS

log = logging.getLogger(__name__)


def load(source: str | os.PathLike | None = None, overrides: Iterable[str] = (), *,
         device: str | torch.device | None = None) -> Pipeline:
    """Load a ready-to-generate pipeline.

    Args:
        source: a recipe file or shipped recipe name, a magnetkit checkpoint folder, an
            audiocraft checkpoint folder (``state_dict.bin`` + ``compression_state_dict.bin``), a
            hub id (e.g. ``facebook/magnet-small-10secs``), or None for the embedded default model.
        overrides: ``key=value`` recipe overrides, e.g. ``sampler.temperature=2.5``.
        device: where to run (default: CUDA when available, else CPU).
    Returns:
        A `Pipeline`.
    Raises:
        RecipeError: the recipe or an override is invalid.
        CheckpointError: weights are missing, unsafe, or do not match the recipe.
    """
    overrides = list(overrides)
    if source is None:
        source = default_model_path()
    data, weights = resolve_source(str(source))
    recipe = validate_recipe(apply_overrides(data, overrides), source=str(source))
    return build_pipeline(recipe, weights, device=device)


#: The recipe name a plugin ships (in a `register_recipe_dirs` folder) to be the default model.
DEFAULT_MODEL = "default-model"


def default_model_path() -> Path:
    """The default model: the recipe named `DEFAULT_MODEL` that an installed plugin ships.

    The core knows only this name, never a plugin's files (the built-in ``magnetkit_demo`` plugin
    ships the embedded model; another plugin may ship its own instead).

    Raises:
        UsageError: no installed plugin ships one.
    """
    from magnetkit.recipe import recipe_dirs

    for folder in recipe_dirs():
        candidate = folder / f"{DEFAULT_MODEL}.yaml"
        if candidate.is_file():
            return candidate
    raise UsageError("no embedded default model is installed; name a recipe, checkpoint or hub id "
                     "(see `magnetkit recipes`)")


def resolve_source(source: str) -> tuple[dict[str, Any], Any]:
    """The recipe mapping a source stands for, and its checkpoint (read, not yet loaded)."""
    path = Path(source).expanduser()
    if path.is_dir() and is_native_checkpoint(path):
        return _native(str(path))
    if (path.is_dir() and is_audiocraft_checkpoint(path)) or (path.is_file() and path.suffix == ".bin"):
        return _audiocraft(str(path))
    if path.is_file() or not looks_like_hub_id(source) or "/" not in source:
        recipe_path = find_recipe(source)
        data = relative_to_recipe(read_yaml(recipe_path), recipe_path.parent)
        checkpoint = data.get("checkpoint")
        if checkpoint is None:
            return data, None
        # Relative checkpoint paths are relative to the recipe file.
        local = (recipe_path.parent / str(checkpoint)).expanduser()
        target = str(local) if local.exists() else str(checkpoint)
        base, weights = resolve_source(target)
        merged = {**base, **{k: v for k, v in data.items() if k != "model"}, "checkpoint": target}
        if data.get("model") is not None:
            check_model_matches(data["model"], base.get("model"), target)
        return merged, weights
    return _audiocraft(source)  # a hub id: the official checkpoints are audiocraft files


def relative_to_recipe(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Component parameters written ``./x`` or ``../x`` made absolute against the recipe's (or checkpoint's) folder.

    A recipe shipped inside a package (the embedded default model) names its asset files this way,
    so they resolve wherever the package is installed, whatever the working directory.
    """
    out = dict(data)
    for kind in KINDS:
        section = out.get(kind)
        if isinstance(section, dict):
            out[kind] = {key: str((folder / value).resolve()) if isinstance(value, str)
                         and value.startswith(("./", "../")) else value for key, value in section.items()}
    return out


def _native(folder: str) -> tuple[dict[str, Any], Any]:
    checkpoint = load_checkpoint(folder)
    # A checkpoint's recipe.yaml may name files beside it (./x, ../x), like a recipe file.
    recipe = relative_to_recipe(checkpoint.recipe, Path(folder).expanduser())
    return {**recipe, "checkpoint": folder}, checkpoint


def _audiocraft(source: str) -> tuple[dict[str, Any], Any]:
    checkpoint = read_audiocraft_checkpoint(source)
    return {**checkpoint.recipe, "checkpoint": source}, checkpoint


def check_model_matches(recipe_model: dict[str, Any], checkpoint_model: dict[str, Any] | None, source: str) -> None:
    """A recipe's ``model`` section must agree with its checkpoint's architecture."""
    if checkpoint_model is None:
        return
    ours = ModelConfig.model_validate(recipe_model).model_dump()
    theirs = ModelConfig.model_validate(checkpoint_model).model_dump()
    diffs = [f"model.{k}: recipe {ours[k]!r}, checkpoint {theirs[k]!r}" for k in ours if ours[k] != theirs[k]]
    if diffs:
        raise CheckpointError(f"the checkpoint {source!r} does not match the recipe: " + "; ".join(diffs))


def build_pipeline(recipe: Recipe, weights: Any = None, *, device: str | torch.device | None = None) -> Pipeline:
    """Build every component of a validated recipe (`magnetkit.builder`) and load the weights into them."""
    if recipe.model is None:
        raise CheckpointError("the recipe has neither a model section nor a checkpoint to take it from")
    if weights is None:
        log.warning("the recipe names no checkpoint: the transformer has random weights")
    model, conditioner = build_modules(recipe, weights)
    return Pipeline(recipe, model, conditioner, build_codec(recipe), device=device)
