"""The one place a recipe's components are built: generation (`magnetkit.load`) and training use it.

Each registry kind is built from its recipe section with the factory context that
`magnetkit.interfaces` declares (a conditioner gets ``output_dim``; a rescorer gets ``pipeline`` and
``role``); the transformer and the conditioner are built together because checkpoints hold both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from magnetkit.checkpoint import load_weights
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.registry import build

if TYPE_CHECKING:  # pragma: no cover
    from magnetkit.recipe import Recipe


def build_modules(recipe: Recipe, weights: Any = None, *, where: str | None = None) -> tuple[MagnetTransformer, Any]:
    """The transformer and the conditioner of ``recipe`` (CPU), holding ``weights`` when given.

    Args:
        recipe: a validated recipe with a ``model`` section.
        weights: a read checkpoint (``model_state``, ``conditioner_state``), or None for the
            initialisation (seed torch first for reproducible weights).
        where: the weights' source, named in errors (default: the recipe's ``checkpoint``).

    Returns:
        (transformer, conditioner).

    Raises:
        CheckpointError: weights that do not fit the modules.
    """
    model = MagnetTransformer(recipe.model)
    conditioner = build_component(recipe, "conditioner")
    if weights is not None:
        where = where or recipe.checkpoint or "the checkpoint"
        load_weights(model, weights.model_state, what=f"transformer weights of {where!r}")
        load_weights(conditioner, weights.conditioner_state, what=f"conditioner weights of {where!r}")
    return model, conditioner


def build_codec(recipe: Recipe, device: torch.device | str | None = None) -> Any:
    """The recipe's codec, on ``device`` when given (a codec that is a ``torch.nn.Module``)."""
    codec = build_component(recipe, "codec")
    return codec.to(device) if device is not None and isinstance(codec, torch.nn.Module) else codec


def build_component(recipe: Recipe, kind: str, **context: Any) -> Any:
    """Build the component of ``kind`` the recipe's section names, with the core's factory context.

    Args:
        recipe: a validated recipe.
        kind: ``codec``, ``conditioner``, ``scheduler``, ``sampler`` or ``rescorer``.
        context: the rest of the factory context (a rescorer's ``pipeline``).

    Returns:
        The component.
    """
    section = getattr(recipe, kind)
    if kind == "conditioner":
        context = {"output_dim": recipe.model.dim, **context}
    elif kind == "rescorer":
        context = {"role": "rescorer", **context}
    return build(kind, section.name, section.config, **context)
