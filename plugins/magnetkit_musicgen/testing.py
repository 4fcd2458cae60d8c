"""Tiny random MusicGen models for tests and benchmarks: built from configs, saved to a folder, offline."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_musicgen(folder: str | Path, *, cardinality: int = 64, num_codebooks: int = 4, sample_rate: int = 8000,
                  hop: tuple[int, ...] = (8, 5, 4), width: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a random ``MusicgenForConditionalGeneration`` (tiny T5, EnCodec, decoder) and a tokenizer.

    The default token space matches `magnetkit.testing.FakeCodec` (8 kHz, hop 160 = 50 frames/s,
    4 codebooks of 64). EnCodec's codebooks are filled with random values (a random EnCodec has
    all-zero codebooks); the ByT5 tokenizer needs no vocabulary file.
    """
    from transformers import (
        ByT5Tokenizer,
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    tokenizer = ByT5Tokenizer()
    text = T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    frame_rate = sample_rate // int(torch.tensor(hop).prod())
    audio = EncodecConfig(sampling_rate=sample_rate, audio_channels=1, num_filters=4, hidden_size=8,
                          codebook_size=cardinality, codebook_dim=8, upsampling_ratios=list(hop),
                          num_residual_layers=1, num_lstm_layers=1, normalize=False,
                          # enough bandwidth for exactly num_codebooks quantizers
                          target_bandwidths=[num_codebooks * frame_rate * 10 / 1000])
    decoder = MusicgenDecoderConfig(vocab_size=cardinality, hidden_size=width, num_hidden_layers=layers,
                                    num_attention_heads=2, ffn_dim=2 * width, num_codebooks=num_codebooks,
                                    max_position_embeddings=2048, pad_token_id=cardinality,
                                    bos_token_id=cardinality, decoder_start_token_id=cardinality)
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            embed = torch.randn(layer.codebook.embed.shape, generator=generator)
            layer.codebook.embed.copy_(embed)
            if hasattr(layer.codebook, "embed_avg"):
                layer.codebook.embed_avg.copy_(embed)
            if hasattr(layer.codebook, "inited"):
                layer.codebook.inited.fill_(True)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_codec(musicgen_folder: str | Path, folder: str | Path) -> Path:
    """Save the EnCodec inside a saved MusicGen as its own transformers folder (for the ``encodec`` codec)."""
    from transformers import MusicgenForConditionalGeneration

    model = MusicgenForConditionalGeneration.from_pretrained(musicgen_folder)
    model.audio_encoder.save_pretrained(folder)
    return Path(folder)
