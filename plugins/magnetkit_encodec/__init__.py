"""magnetkit built-in plugin: the ``encodec`` codec (transformers' EncodecModel)."""

from magnetkit import hookimpl

from magnetkit_encodec.codec import EncodecCodec, EncodecCodecConfig, factory, load_encodec_model

__all__ = ["EncodecCodec", "EncodecCodecConfig", "factory", "load_encodec_model", "register_codecs"]


@hookimpl
def register_codecs(register) -> None:
    """Register the ``encodec`` codec."""
    register("encodec", factory, config=EncodecCodecConfig)
