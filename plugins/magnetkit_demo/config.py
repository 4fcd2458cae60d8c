"""The demo plugin's settings, free of torch: the command line reads their defaults at start-up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoData:
    """How much synthetic data the demo model trains on."""

    train_clips: int = 4000
    valid_clips: int = 200
    seed: int = 0
    omit_attributes: float = 0.0  # training captions leave out each of waveform/register/tempo with this probability
    augment_captions: float = 0.0  # share of training captions drawn from the wide vocabulary (augmented_caption)
    timing: str = "free"  # magnetkit_synth's clip timing: "free" or "grid" (one interval per tempo word)
    arpeggio: str = "varied"  # magnetkit_synth's arpeggio pitches: "varied", "ascending" or "fixed"
