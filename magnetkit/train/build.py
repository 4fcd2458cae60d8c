"""What a run is built from: the training recipe, its starting weights, the token caches, the modules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from magnetkit import builder
from magnetkit.builder import build_codec
from magnetkit.checkpoint import load_weights
from magnetkit.errors import RecipeError, UsageError
from magnetkit.loading import check_model_matches, resolve_source
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.recipe import Recipe, apply_overrides, validate_recipe
from magnetkit.train.cache import TokenSet, open_tokens, prepare_cache
from magnetkit.train.distributed import World, barrier
from magnetkit.train.manifest import read_items


# ------------------------------------------------------------------------------- the recipe
def load_training_recipe(source: str | os.PathLike, overrides: Iterable[str] = ()) -> tuple[Recipe, Any]:
    """A validated recipe with ``data`` and ``train`` sections, and its starting weights (or None).

    ``source`` is a recipe (file or shipped name), or a checkpoint folder or hub id whose recipe
    is trained further. Starting weights come from ``train.init_from`` if set, else from the
    recipe's ``checkpoint``; the model section, when given, must match them.

    Raises:
        RecipeError: an invalid recipe, or one without what training needs.
        CheckpointError: starting weights that cannot be read or do not match the model.
    """
    raw, weights = resolve_source(str(source))
    raw = apply_overrides(raw, overrides)
    init_from = (raw.get("train") or {}).get("init_from") if isinstance(raw.get("train"), dict) else None
    if init_from:
        base, weights = resolve_source(str(init_from))
        if raw.get("model") is not None:
            check_model_matches(raw["model"], base.get("model"), str(init_from))
        raw = {**raw, "model": raw.get("model") or base.get("model")}
    recipe = validate_recipe(raw, source=str(source))
    require_sections(recipe, ("data", "train", "model"), str(source))
    return recipe, weights


_HINTS = {"data": " (data.train: a manifest or folder of audio)", "train": " (train: {} takes every default)",
          "model": " (or a checkpoint / train.init_from to take it from)"}


def require_sections(recipe: Recipe, sections: Sequence[str], source: str | None = None) -> None:
    """Raise one RecipeError naming every section training needs that the recipe lacks."""
    missing = [f"{key}: required for training{_HINTS[key]}" for key in sections if getattr(recipe, key) is None]
    if missing:
        raise RecipeError(missing, source=source)


def exported_recipe(recipe: Recipe) -> dict[str, Any]:
    """The recipe stored with trained weights: they are the checkpoint, so no other source is named."""
    data = recipe.to_dict()
    data.pop("checkpoint", None)
    data.get("train", {}).pop("init_from", None)
    return data


def codec_section(recipe: Recipe) -> dict[str, Any]:
    """The resolved codec section (what a token cache is keyed by)."""
    return {"name": recipe.codec.name, **recipe.codec.config.model_dump(mode="json")}


# ------------------------------------------------------------------------------ token caches
def cache_root(recipe: Recipe) -> Path:
    """The token cache folder: ``data.cache``, or ``<train.out_dir>/tokens``."""
    return Path(recipe.data.cache or Path(recipe.train.out_dir) / "tokens").expanduser()


def prepare_tokens(recipe: Recipe, world: World, progress: bool) -> dict[str, TokenSet]:
    """Encode what is missing from the caches of the train (and valid) split, then open them.

    Every process encodes its share of the missing shards; all wait for each other before reading.
    """
    splits = {"train": recipe.data.train, **({"valid": recipe.data.valid} if recipe.data.valid else {})}
    items = {}
    for split, source in splits.items():
        try:
            items[split] = read_items(source)
        except UsageError as exc:
            raise RecipeError([f"data.{split}: {exc}"]) from None
    root = cache_root(recipe)
    for split, listed in items.items():
        prepare_cache(listed, root / split, codec_section(recipe), lambda: build_codec(recipe, world.device),
                      shard_size=recipe.data.shard_size, rank=world.rank, world=world.size, device=world.device,
                      progress=progress and world.is_main)
    barrier()
    return {split: open_tokens(listed, root / split, recipe.data.shard_size) for split, listed in items.items()}


def check_tokens_fit(recipe: Recipe, tokens: TokenSet) -> None:
    """The cached tokens must be the model's token space (codebooks, cardinality, frame rate)."""
    info, model = tokens.info, recipe.model
    problems = []
    if info.num_codebooks != model.num_codebooks:
        problems.append(f"model.num_codebooks: {model.num_codebooks}, but the codec has {info.num_codebooks}")
    if info.cardinality != model.cardinality:
        problems.append(f"model.cardinality: {model.cardinality}, but the codec has {info.cardinality}")
    if abs(info.frame_rate - model.frame_rate) > 1e-3 * model.frame_rate:
        problems.append(f"model.frame_rate: {model.frame_rate:g}, but the codec makes {info.frame_rate:g} frames/s")
    if problems:
        raise RecipeError(problems)


# ---------------------------------------------------------------------------------- modules
class MagnetLM(nn.Module):
    """What is trained: the conditioner's learned part and the transformer, as one module for DDP/FSDP.

    Cross-attention has no padding mask (audiocraft), so how far the condition is zero-padded
    changes the output. The loop therefore pads every row to one ``condition_length`` for the
    whole global batch, which keeps a step independent of how the batch is split.
    """

    def __init__(self, model: MagnetTransformer, conditioner: nn.Module):
        super().__init__()
        self.model = model
        self.conditioner = conditioner

    def forward(self, codes: torch.Tensor, texts: Sequence[str | None], stage: int,
                condition_length: int | None = None, causal_prefix: int = 0) -> torch.Tensor:
        """Logits [B, 1, T, card] of ``stage`` for ``codes`` [B, K, T] conditioned on ``texts``.

        With a ``causal_prefix`` (Hybrid-MAGNeT, `magnetkit.hybrid.objective`) every head: [B, K, T, card].
        """
        condition = self.conditioner(list(texts)).embeddings  # [B, L, D]; None rows are the null condition
        if condition_length is not None:  # zeros, as Condition.cat pads (never cut: max with 0)
            condition = F.pad(condition, (0, 0, 0, max(0, condition_length - condition.shape[1])))
        return self.model(codes, condition, stage, stage_only=not causal_prefix, causal_prefix=causal_prefix)

    def example_inputs(self, device: torch.device) -> tuple[torch.Tensor, list[str | None], int]:
        """The smallest valid input: one fully masked frame, the null condition, stage 0."""
        config = self.model.config
        return torch.full((1, config.num_codebooks, 1), config.mask_id, device=device), [None], 0


def build_modules(recipe: Recipe, weights: Any = None) -> tuple[MagnetTransformer, nn.Module]:
    """The transformer and conditioner on the CPU (`magnetkit.builder`), from ``weights`` or a seeded initialisation.

    Seeding first makes every process build identical weights (FSDP shards them in place).
    """
    torch.manual_seed(recipe.train.seed if recipe.train else 0)
    where = recipe.train.init_from if recipe.train and recipe.train.init_from else recipe.checkpoint
    return builder.build_modules(recipe, weights, where=where)


class Exporter:
    """CPU copies of the modules on the main process, to write checkpoints and generate samples from."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self._modules: tuple[MagnetTransformer, nn.Module] | None = None

    def load(self, state: dict[str, torch.Tensor]) -> tuple[MagnetTransformer, nn.Module]:
        """The modules holding ``state`` (MagnetLM names: ``model.*``, ``conditioner.*``)."""
        if self._modules is None:
            # Building seeds torch's global generator; fork it so training's random stream is untouched.
            with torch.random.fork_rng(devices=[]):
                self._modules = build_modules(self.recipe)
        model, conditioner = self._modules
        load_weights(model, split_state(state, "model."), what="trained transformer weights")
        load_weights(conditioner, split_state(state, "conditioner."), what="trained conditioner weights")
        return model.eval(), conditioner.eval()


def split_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, without it."""
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
