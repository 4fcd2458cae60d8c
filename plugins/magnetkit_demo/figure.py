"""A spectrogram figure of what the default model plays for a few prompts, next to real clips of the same attributes.

Used for the README (``magnetkit demo-figure docs/default-model-spectrograms.png``); needs matplotlib
(``pip install matplotlib``), which nothing else in magnetkit does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from magnetkit import UsageError
from magnetkit_synth.analysis import analyse
from magnetkit_synth.dataset import SAMPLE_RATE, Attributes, make_clip, parse_caption

from magnetkit_demo.config import DemoData

# Two held-out combinations (the first example among them), three seen in training.
PROMPTS = (
    "a slow low sine wave arpeggio",
    "a fast mid-range square wave arpeggio",
    "a fast low plucked string arpeggio",
    "a high sawtooth sustained note",
    "a slow mid-range noise drums beat",
)


def log_spectrogram(wav: np.ndarray, n_fft: int = 1024, hop: int = 160) -> np.ndarray:
    """dB magnitude [F, N] of a mono clip (Hann window), floored 80 dB below its peak."""
    pad = np.pad(np.asarray(wav, dtype=np.float64), (n_fft // 2, n_fft // 2))
    count = 1 + (len(pad) - n_fft) // hop
    frames = pad[np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]] * np.hanning(n_fft)
    db = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T + 1e-9)
    return np.maximum(db, db.max() - 80.0)


def _reading(wav: np.ndarray, sample_rate: int) -> str:
    result = analyse(wav, sample_rate)
    a = result.attributes
    words = " ".join(v for v in (a.tempo, a.register, a.waveform, a.pattern) if v)
    return f"judged: {words}" + ("" if result.full_length else f" (silent {result.longest_silence:.1f} s)")


def spectrogram_figure(pipeline, out: str | Path, prompts: tuple[str, ...] = PROMPTS, seed: int = 0,
                       data: DemoData = DemoData()) -> Path:
    """Generate one clip per prompt and write a PNG: model (left) and a real clip of the same attributes (right).

    The real clips are rendered as ``data``'s (`DemoData.style`; by default the default model's training data).

    Raises:
        UsageError: matplotlib is missing, or ``out`` is not a writable .png path.
    """
    out = Path(out)
    if out.suffix.lower() != ".png" or not out.parent.is_dir():
        raise UsageError(f"{out}: give a .png path in an existing folder")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the figure needs matplotlib: pip install matplotlib") from None
    result = pipeline.generate(list(prompts), seed=seed, progress=False)
    audio = result.audio.numpy().mean(1)  # [B, S]
    fig, axes = plt.subplots(len(prompts), 2, figsize=(11, 2.1 * len(prompts)), squeeze=False, sharey=True)
    for row, prompt in enumerate(prompts):
        named = parse_caption(prompt)
        real = make_clip(seed, "train", row, attrs=Attributes(named["waveform"], named["register"], named["tempo"],
                                                               named["pattern"]),
                         **data.style).audio[: 3 * SAMPLE_RATE]
        for col, (wav, rate, label) in enumerate(((audio[row], result.sample_rate, "model"),
                                                  (real, SAMPLE_RATE, "real clip"))):
            spec = log_spectrogram(wav)
            ax = axes[row][col]
            ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                      extent=(0, len(wav) / rate, 0, rate / 2000))
            ax.set_ylim(0, 4)
            ax.set_title(f"{label}: \"{prompt}\"\n{_reading(wav, rate)}", fontsize=8)
            ax.set_ylabel("kHz", fontsize=8)
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("seconds", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
