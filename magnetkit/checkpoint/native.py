"""magnetkit's own checkpoint folder: ``model.safetensors`` + ``recipe.yaml``, self-describing.

``model.safetensors`` holds the transformer's tensors under ``model.`` and the conditioner's
learned tensors under ``conditioner.``; ``recipe.yaml`` is the resolved recipe that rebuilds
every component. safetensors cannot run code on load, unlike a pickle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from magnetkit.checkpoint.audiocraft import LM_FILE
from magnetkit.checkpoint.files import atomic_write
from magnetkit.checkpoint.weights import module_state
from magnetkit.errors import CheckpointError
from magnetkit.hub import local_path

WEIGHTS_FILE = "model.safetensors"
RECIPE_FILE = "recipe.yaml"
FORMAT = "magnetkit"
FORMAT_VERSION = "1"
MODEL_PREFIX = "model."
CONDITIONER_PREFIX = "conditioner."


@dataclass(frozen=True)
class NativeCheckpoint:
    """A magnetkit checkpoint: the resolved recipe and the two modules' tensors."""

    recipe: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    conditioner_state: dict[str, torch.Tensor]


def save_checkpoint(folder: str | os.PathLike, *, model: nn.Module, conditioner: nn.Module,
                    recipe: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``recipe.yaml`` into ``folder``, each replaced atomically.

    Args:
        folder: the checkpoint folder (created if missing).
        model: the transformer.
        conditioner: the conditioner; only its ``state_dict()`` (learned weights) is stored.
        recipe: the resolved recipe as a plain dict (YAML-serialisable).
    Returns:
        The folder.
    Raises:
        CheckpointError: a recipe that is not a plain YAML-serialisable dict.
    """
    if not isinstance(recipe, dict):
        raise CheckpointError(f"recipe must be a dict, got {type(recipe).__name__}")
    try:
        recipe_text = yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False)
    except yaml.YAMLError as exc:
        raise CheckpointError(f"recipe is not plain YAML data: {str(exc).splitlines()[0]}") from None
    tensors = {MODEL_PREFIX + key: value for key, value in module_state(model).items()}
    tensors.update({CONDITIONER_PREFIX + key: value for key, value in module_state(conditioner).items()})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION}
    # Weights first: a folder is a checkpoint only once recipe.yaml exists beside them.
    atomic_write(folder / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    atomic_write(folder / RECIPE_FILE, lambda tmp: tmp.write_text(recipe_text, encoding="utf-8"))
    return folder


def load_checkpoint(folder: str | os.PathLike) -> NativeCheckpoint:
    """Read a magnetkit checkpoint folder (or hub id) written by ``save_checkpoint``.

    Raises:
        CheckpointError: a missing file, an unreadable recipe, or tensors under an unknown prefix.
        HubUnavailableError: a hub id that is not cached while the hub cannot be reached.
    """
    recipe_path = local_path(folder, RECIPE_FILE, what="magnetkit checkpoint")
    weights_path = local_path(folder, WEIGHTS_FILE, what="magnetkit checkpoint")
    try:
        recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{str(recipe_path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(recipe, dict):
        raise CheckpointError(f"{str(recipe_path)!r} does not hold a recipe mapping")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{str(weights_path)!r} is not a readable safetensors file: {exc}") from None
    model_state, conditioner_state, unknown = {}, {}, []
    for key, value in tensors.items():
        if key.startswith(MODEL_PREFIX):
            model_state[key[len(MODEL_PREFIX):]] = value
        elif key.startswith(CONDITIONER_PREFIX):
            conditioner_state[key[len(CONDITIONER_PREFIX):]] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{str(weights_path)!r} has tensors outside model./conditioner.: {', '.join(unknown[:12])}")
    return NativeCheckpoint(recipe=recipe, model_state=model_state, conditioner_state=conditioner_state)


def is_native_checkpoint(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a local magnetkit checkpoint folder."""
    path = Path(folder).expanduser()
    return (path / WEIGHTS_FILE).is_file() and (path / RECIPE_FILE).is_file()


def is_audiocraft_checkpoint(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a local audiocraft LM checkpoint folder (holds ``state_dict.bin``)."""
    return (Path(folder).expanduser() / LM_FILE).is_file()
