"""The demo plugin's settings, free of torch: the command line reads their defaults at start-up."""

from __future__ import annotations

from dataclasses import dataclass

# Layers of the random caption encoder (magnetkit_demo.captions). With 0 (the shipped model's) each
# word encodes alone, so a held-out combination is made of the very encodings training saw; the two
# random layers of earlier models mixed every word with the rest of its caption.
CAPTION_LAYERS = 0


@dataclass(frozen=True)
class DemoData:
    """Which synthetic data the demo model trains on: how many clips, their captions, timing and pitches."""

    train_clips: int = 4000
    valid_clips: int = 200
    seed: int = 0
    omit_attributes: float = 0.0  # training captions leave out each of waveform/register/tempo with this probability
    augment_captions: float = 0.0  # share of training captions drawn from the wide vocabulary (augmented_caption)
    # magnetkit_synth's clip timing: "grid" (one interval per tempo word, notes to the end) or "free"
    timing: str = "grid"
    # magnetkit_synth's arpeggio pitches: "fixed" (one major triad per register), "ascending" or "varied";
    # with varied pitches the model holds one note (plugins/magnetkit_demo/README.md, "What was tried")
    arpeggio: str = "fixed"
    # magnetkit_synth's drum sounds: "varied" (every hit drawn) or "fixed" (one hit per voice and register)
    kit: str = "varied"

    @property
    def style(self) -> dict[str, str]:
        """How magnetkit_synth renders the clips: ``make_clip``'s and ``write_dataset``'s timing, arpeggio and kit."""
        return {"timing": self.timing, "arpeggio": self.arpeggio, "kit": self.kit}
