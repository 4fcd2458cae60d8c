"""magnetkit built-in plugin: the ``dac`` codec (transformers' DacModel)."""

from magnetkit import hookimpl

from magnetkit_dac.codec import DacCodec, DacCodecConfig, factory, load_dac_model

__all__ = ["DacCodec", "DacCodecConfig", "factory", "load_dac_model", "register_codecs"]


@hookimpl
def register_codecs(register) -> None:
    """Register the ``dac`` codec."""
    register("dac", factory, config=DacCodecConfig)
