"""magnetkit built-in plugin: procedural music-like clips with attribute captions, and the judge that reads them back.

`magnetkit_synth.dataset` renders the clips (waveform, register, tempo, pattern),
`magnetkit_synth.analysis` is the fixed signal-processing judge of codec fidelity and prompt
adherence, and `magnetkit_synth.fidelity` measures a codec with it. The ``synth-data`` command
writes a dataset.
"""

from magnetkit import hookimpl

from magnetkit_synth.dataset import (
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
    "register_commands",
    "write_dataset",
]


@hookimpl
def register_commands(subparsers) -> None:
    """Add ``synth-data`` and ``judge-accuracy``."""
    from magnetkit_synth.commands import add_commands

    add_commands(subparsers)


def __getattr__(name: str):
    # The judge loads on first use, so `python -m magnetkit_synth.analysis` runs it fresh (no runpy warning).
    if name in ("Analysis", "analyse", "attribute_accuracy"):
        from magnetkit_synth import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'magnetkit_synth' has no attribute {name!r}")
