"""Random-weight MAGNeT systems of the published sizes, built offline for benchmarking.

Speed depends on the architecture, not on the weights, so each size is the real architecture
with random weights: the transformer (``SIZES``), a T5 encoder + projection as the conditioner
and a 32 kHz EnCodec as the codec. ``tiny`` is the parity fixture's architecture
(``tests/fixtures/magnet_tiny``) with that fixture's small T5 and EnCodec.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.pipeline import Pipeline
from magnetkit.recipe import load_recipe

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "magnet_tiny"


@dataclass(frozen=True)
class Size:
    """One benchmarked system: the transformer's shape and which conditioner and codec go with it."""

    name: str
    model: ModelConfig
    full_size_parts: bool  # True: t5-base-sized T5 and full-width EnCodec 32 kHz; False: the fixture's tiny ones
    note: str


SIZES = {
    "tiny": Size("tiny", ModelConfig(dim=64, num_heads=4, num_layers=2), False,
                 "the parity fixture's architecture: dim 64, 2 layers, 4 heads, fixture T5 and EnCodec"),
    "small": Size("small", ModelConfig(dim=1024, num_heads=16, num_layers=24), True,
                  "facebook/magnet-small-10secs: dim 1024, 24 layers, 16 heads"),
    "medium": Size("medium", ModelConfig(dim=1536, num_heads=24, num_layers=48), True,
                   "facebook/magnet-medium-10secs: dim 1536, 48 layers, 24 heads"),
}


def parameter_count(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def build_conditioner(full_size: bool, output_dim: int) -> torch.nn.Module:
    """audiocraft's T5 conditioner around a random T5 encoder (t5-base's shape when ``full_size``)."""
    from magnetkit_t5.conditioner import T5Conditioner, T5ConditionerConfig
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    folder = FIXTURE / "t5_random"
    tokenizer = T5Tokenizer.from_pretrained(folder)
    if full_size:  # t5-base: 12 layers, d_model 768, 12 heads, d_ff 3072
        config = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                          feed_forward_proj="relu", is_encoder_decoder=False, use_cache=False)
        encoder = T5EncoderModel(config)
    else:
        encoder = T5EncoderModel.from_pretrained(folder)
    return T5Conditioner(T5ConditionerConfig(model=str(folder)), output_dim, tokenizer=tokenizer,
                         encoder=encoder.float().eval())


def build_codec(full_size: bool) -> torch.nn.Module:
    """EnCodec 32 kHz (4 codebooks of 2048); facebook/encodec_32khz's widths when ``full_size``."""
    from magnetkit_encodec.codec import EncodecCodec
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig.from_pretrained(FIXTURE / "hf_encodec_32khz_random")
    if full_size:  # the fixture is facebook/encodec_32khz with smaller widths
        config = copy.deepcopy(config)
        config.hidden_size, config.num_filters, config.codebook_dim = 128, 64, 128
    model = EncodecModel(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random EnCodec codebooks are all zero (PITFALLS): fill them
        for layer in model.quantizer.layers:
            layer.codebook.embed.copy_(torch.randn(layer.codebook.embed.shape, generator=generator))
    return EncodecCodec(model)


def build_pipeline(size: Size, device: str, sampler: str = "top_p", seed: int = 0) -> Pipeline:
    """A `Pipeline` of ``size`` with random weights, audiocraft's generation defaults and ``sampler``."""
    torch.manual_seed(seed)
    model = MagnetTransformer(size.model)
    conditioner = build_conditioner(size.full_size_parts, size.model.dim)
    codec = build_codec(size.full_size_parts)
    recipe = load_recipe({"codec": {"name": "encodec"}, "conditioner": {"name": "t5"},
                          "sampler": {"name": sampler}, "generation": {"progress": False}})
    return Pipeline(recipe, model, conditioner, codec, device=device)
