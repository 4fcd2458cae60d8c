"""Procedural music-like clips with attribute captions, and the signal-processing judge that reads them back."""

from magnetkit.synth.dataset import (
    HELDOUT,
    SAMPLE_RATE,
    Attributes,
    Clip,
    attribute_grid,
    clip_caption,
    combinations,
    iter_clips,
    make_clip,
    parse_caption,
    write_dataset,
)

__all__ = [
    "HELDOUT",
    "SAMPLE_RATE",
    "Analysis",
    "Attributes",
    "Clip",
    "analyse",
    "attribute_accuracy",
    "attribute_grid",
    "clip_caption",
    "combinations",
    "iter_clips",
    "make_clip",
    "parse_caption",
    "write_dataset",
]


def __getattr__(name: str):
    # The judge loads on first use, so `python -m magnetkit.synth.analysis` runs it fresh (no runpy warning).
    if name in ("Analysis", "analyse", "attribute_accuracy"):
        from magnetkit.synth import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'magnetkit.synth' has no attribute {name!r}")
