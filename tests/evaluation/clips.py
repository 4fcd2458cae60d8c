"""Synthetic clip folders for evaluation tests: numpy tones, no model, no synth package needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SR = 16000


def tone(rng: np.random.Generator, seconds: float = 1.0, noise: float = 0.0, distort: bool = False) -> np.ndarray:
    """A harmonic tone with a random pitch (200-800 Hz) and level, optionally degraded."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(200, 800)
    wav = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) for k in range(1, 5))
    wav = wav * np.minimum(1, 10 * t) * rng.uniform(0.1, 0.3)
    if distort:  # saturation: adds odd harmonics
        wav = 0.2 * np.tanh(8 * wav)
    return (wav + noise * rng.standard_normal(len(t))).astype(np.float32)


def write_set(folder: Path, n: int, seed: int, **degrade) -> list[Path]:
    """``n`` tone clips as WAV files in ``folder`` (clip000.wav, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"clip{i:03d}.wav"
        soundfile.write(path, tone(rng, **degrade), SR, subtype="FLOAT")
        paths.append(path)
    return paths
