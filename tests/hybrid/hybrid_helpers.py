"""Builders shared by the hybrid and rescoring tests (tiny random models on the fakes)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

from magnetkit import hookimpl
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.pipeline import Pipeline
from magnetkit.recipe import load_recipe
from magnetkit.testing import FakeCodec, FakeCodecConfig, FakeConditioner

CARD = 64  # the fake codec's cardinality, shared by every tiny model here


def tiny_model(cardinality: int = CARD, segment: float = 2.0, seed: int = 0,
               positions: str = "sin", positional_scale: float = 1.0) -> MagnetTransformer:
    """A 2-layer, 32-wide MAGNeT transformer with random weights."""
    torch.manual_seed(seed)
    return MagnetTransformer(ModelConfig(dim=32, num_heads=2, num_layers=2, num_codebooks=4,
                                         cardinality=cardinality, segment_duration=segment,
                                         positional_embedding=positions, positional_scale=positional_scale))


def make_pipeline(*overrides: str, recipe: dict | None = None, model: MagnetTransformer | None = None,
                  codec=None) -> Pipeline:
    """A CPU pipeline on the fakes with 1 s of 4-stage decoding; ``recipe`` entries are added."""
    base = {"codec": {"name": "fake", "cardinality": CARD}, "conditioner": {"name": "fake"},
            "generation": {"duration": 1.0, "decoding_steps": [4, 2, 2, 2], "progress": False}}
    recipe = load_recipe({**base, **(recipe or {})}, list(overrides))
    model = model or tiny_model()
    conditioner = FakeConditioner(output_dim=model.config.dim)
    codec = codec or FakeCodec(FakeCodecConfig(cardinality=model.config.cardinality))
    return Pipeline(recipe, model, conditioner, codec, device="cpu")


class PreferLowConfig(BaseModel):
    """A test rescorer's parameters."""

    model_config = ConfigDict(extra="forbid")
    weight: float = 0.05


class PreferLow:
    """Scores codes below CARD / 2 as certain and the rest as nearly impossible."""

    def __init__(self, config: PreferLowConfig, *, pipeline=None, role="rescorer"):
        self.weight = config.weight
        self.calls: list[tuple[int, ...]] = []

    def applies(self, stage: int, step: int) -> bool:
        return True

    def token_probs(self, codes: torch.Tensor, texts) -> torch.Tensor:
        self.calls.append(tuple(codes.shape))
        return torch.where(codes < CARD // 2, 1.0, 1e-6)


class PreferLowPlugin:
    @hookimpl
    def register_rescorers(self, register) -> None:
        register("prefer_low", PreferLow, config=PreferLowConfig)
