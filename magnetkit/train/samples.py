"""Periodic samples: a few generations with the current weights, to listen to while training runs."""

from __future__ import annotations

from pathlib import Path

import torch

from magnetkit.audio import write_audio
from magnetkit.batch import slug
from magnetkit.pipeline import Pipeline
from magnetkit.recipe import Recipe
from magnetkit.train.cache import TokenSet
from magnetkit.train.config import TrainConfig

SAMPLES_DIR = "samples"


def sample_texts(config: TrainConfig, tokens: TokenSet) -> list[str | None]:
    """``train.sample_texts``, else the first captions of ``tokens`` (the validation or training files)."""
    if config.sample_texts:
        return list(config.sample_texts)
    captions = [entry.caption for entry in tokens.entries if entry.caption]
    return list(dict.fromkeys(captions))[:config.num_samples] or [None] * config.num_samples


def generate_samples(recipe: Recipe, model: torch.nn.Module, conditioner: torch.nn.Module, codec: object,
                     texts: list[str | None], folder: Path, device: torch.device) -> list[Path]:
    """Generate ``texts`` with the recipe's generation settings into ``folder``; return the files written.

    The modules go back to the CPU afterwards, out of accelerator memory.
    """
    pipeline = Pipeline(recipe, model, conditioner, codec, device=device)
    seed = recipe.train.seed if recipe.train else 0
    # A fixed seed: successive samples differ only because the weights do.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        result = pipeline.generate(texts, seed=seed, progress=False)
    paths = [write_audio(folder / f"{i:02d}_{slug(text or 'unconditional')}.wav", audio, result.sample_rate)
             for i, (text, audio) in enumerate(zip(texts, result.audio))]
    model.cpu()
    conditioner.cpu()
    return paths
