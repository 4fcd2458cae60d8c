"""magnetkit built-in plugin: embedders for evaluation (`magnetkit eval`).

``mel`` needs no weights; ``clap``, ``ast``, ``encodec`` and ``vggish`` load official weights by
hub id or local folder. Heavy model code is imported only when an embedder is built.
"""

from magnetkit import hookimpl

from magnetkit_embedders.mel import MelEmbedder, MelEmbedderConfig

__all__ = ["MelEmbedder", "MelEmbedderConfig", "register_embedders"]


@hookimpl
def register_embedders(register) -> None:
    """Register the built-in embedders."""
    from magnetkit_embedders import ast, clap, encodec, mel, vggish

    register("mel", mel.factory, config=MelEmbedderConfig)
    register("clap", clap.factory, config=clap.ClapEmbedderConfig)
    register("ast", ast.factory, config=ast.AstEmbedderConfig)
    register("encodec", encodec.factory, config=encodec.CodecEmbedderConfig)
    register("vggish", vggish.factory, config=vggish.VggishEmbedderConfig)
