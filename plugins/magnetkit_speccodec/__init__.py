"""magnetkit built-in plugin: the ``speccodec`` codec and its fitting/fidelity commands.

``speccodec`` is residual k-means quantisation over a fixed STFT representation, decoded with
Griffin-Lim: it fits in minutes on a CPU and keeps pitch and onsets of the procedural clips of
`magnetkit_synth` (see `magnetkit_speccodec.codec` for the design and why it is not neural).
"""

from magnetkit import hookimpl
from magnetkit_speccodec.codec import SpecCodec, SpecCodecConfig, SpecParams, factory, load_speccodec
from magnetkit_speccodec.commands import add_commands
from magnetkit_speccodec.fit import FitConfig, fit_codec

__all__ = ["FitConfig", "SpecCodec", "SpecCodecConfig", "SpecParams", "factory", "fit_codec", "load_speccodec",
           "register_codecs", "register_commands"]


@hookimpl
def register_codecs(register) -> None:
    """Register the ``speccodec`` codec."""
    register("speccodec", factory, config=SpecCodecConfig)


@hookimpl
def register_commands(subparsers) -> None:
    """Add ``fit-codec`` and ``codec-fidelity``."""
    add_commands(subparsers)
