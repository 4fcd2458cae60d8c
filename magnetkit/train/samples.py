"""Periodic samples: a few generations with the current weights, to listen to while training runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from magnetkit.audio import write_audio
from magnetkit.commands.generate import slug
from magnetkit.pipeline import Pipeline
from magnetkit.train.build import build_codec

if TYPE_CHECKING:
    from magnetkit.train.loop import Run

SAMPLES_DIR = "samples"


def sample_texts(run: "Run") -> list[str | None]:
    """``train.sample_texts``, else the first captions of the validation (or training) files."""
    if run.config.sample_texts:
        return list(run.config.sample_texts)
    tokens = run.valid if run.valid is not None else run.stream.tokens
    captions = [entry.caption for entry in tokens.entries if entry.caption]
    return list(dict.fromkeys(captions))[:run.config.num_samples] or [None] * run.config.num_samples


def generate_samples(run: "Run", weights: dict[str, torch.Tensor]) -> list[Path]:
    """Generate from ``weights`` with the recipe's generation settings; return the files written."""
    if run.codec is None:
        run.codec = build_codec(run.recipe, run.world.device)
    model, conditioner = run.exporter.load(weights)
    pipeline = Pipeline(run.recipe, model, conditioner, run.codec, device=run.world.device)
    texts = sample_texts(run)
    # A fixed seed: successive samples differ only because the weights do.
    with torch.random.fork_rng(devices=[run.world.device] if run.world.device.type == "cuda" else []):
        result = pipeline.generate(texts, seed=run.config.seed, progress=False)
    folder = run.out_dir / SAMPLES_DIR / f"step-{run.step:07d}"
    paths = [write_audio(folder / f"{i:02d}_{slug(text or 'unconditional')}.wav", audio, result.sample_rate)
             for i, (text, audio) in enumerate(zip(texts, result.audio))]
    model.cpu()  # the CPU copies go back out of accelerator memory
    conditioner.cpu()
    return paths
