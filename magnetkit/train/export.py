"""The final model in audiocraft's format: ``state_dict.bin`` + ``compression_state_dict.bin``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from magnetkit.checkpoint import export_audiocraft
from magnetkit.checkpoint.audiocraft import CODEC_FILE
from magnetkit.errors import CheckpointError
from magnetkit.hub import local_path
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.recipe import Recipe


def compression_source(recipe: Recipe) -> str | None:
    """What audiocraft should load the codec from: a codec file to copy, or a pretrained codec name.

    A MAGNeT hub repo (e.g. ``facebook/magnet-small-10secs``) is not a codec name audiocraft
    knows, so its ``compression_state_dict.bin`` is copied instead. Codecs other than EnCodec
    have no audiocraft form: None.
    """
    if recipe.codec.name != "encodec":
        return None
    source = recipe.codec.config.model
    if source.startswith("facebook/encodec_"):
        return source  # audiocraft's CompressionModel.get_pretrained knows these names
    try:
        return str(local_path(source, CODEC_FILE, what="EnCodec model"))
    except CheckpointError:
        # A local transformers folder has no audiocraft form; a hub id is left for audiocraft to fetch.
        return None if Path(source).expanduser().exists() else source


def export_run(recipe: Recipe, model: MagnetTransformer, conditioner: nn.Module, folder: Path) -> Path:
    """Export trained modules for audiocraft's ``MAGNeT.get_pretrained(folder)``; return the folder.

    Raises:
        CheckpointError: the conditioner is not a T5 audiocraft can load by name.
    """
    span_len = getattr(recipe.scheduler.config, "span_len", None)
    export_audiocraft(folder, model, conditioner, span_len=span_len, compression=compression_source(recipe))
    return folder
