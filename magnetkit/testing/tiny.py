"""Tiny random models of the real component families, saved as local folders (offline tests).

Each builder writes a folder that the corresponding plugin loads with ``model: <folder>``, so
a recipe can swap components end to end without any hub download.
"""

from __future__ import annotations

from pathlib import Path

import torch

from magnetkit.model.config import ModelConfig

CORPUS = ["happy rock", "sad piano", "a calm piano melody with soft drums", "energetic drums and bass",
          "80s electronic track with melodic synthesizers", "ambient pads and strings"] * 10


def tiny_dac_44khz(folder: str | Path, seed: int = 0) -> Path:
    """A random DAC with descript/dac_44khz's token layout (44.1 kHz, hop 512, 9 x 1024) and tiny widths."""
    from transformers import DacConfig, DacModel

    config = DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 4, 8, 8], decoder_hidden_size=16,
                       n_codebooks=9, codebook_size=1024, codebook_dim=8, quantizer_dropout=0.0,
                       commitment_loss_weight=0.25, codebook_loss_weight=1.0, sampling_rate=44100)
    torch.manual_seed(seed)
    DacModel(config).eval().save_pretrained(folder)
    return Path(folder)


def tiny_clap(folder: str | Path, seed: int = 0) -> Path:
    """A random ClapModel (every config field set), a freshly trained tokenizer and a 2 s feature extractor."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, RobertaTokenizer

    tokenizer = RobertaTokenizer().train_new_from_iterator(CORPUS, vocab_size=300)  # milliseconds, offline
    text = dict(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=80, projection_dim=8, hidden_act="gelu",
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, type_vocab_size=1, layer_norm_eps=1e-12,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, projection_hidden_act="relu", initializer_factor=1.0)
    audio = dict(window_size=4, num_mel_bins=16, spec_size=64, patch_size=4, patch_stride=[4, 4], depths=[1, 1],
                 num_attention_heads=[1, 2], patch_embeds_hidden_size=8, hidden_size=16, projection_dim=8,
                 enable_fusion=False, fusion_type=None, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                 drop_path_rate=0.0, num_classes=4, mlp_ratio=2.0, num_hidden_layers=2, projection_hidden_act="relu",
                 layer_norm_eps=1e-5, initializer_factor=1.0, patch_embed_input_channels=1, flatten_patch_embeds=True,
                 enable_patch_layer_norm=True, qkv_bias=True, aff_block_r=4, hidden_act="gelu")
    config = ClapConfig(text_config=text, audio_config=audio, projection_dim=8, logit_scale_init_value=1 / 0.07,
                        projection_hidden_act="relu", initializer_factor=1.0)
    torch.manual_seed(seed)
    ClapModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # 16 mel bins and 2 s windows fit the 64-wide spectrogram image of the tiny audio encoder. The
    # default truncation ("fusion") would crash this unfused model: the conditioner overrides it.
    ClapFeatureExtractor(feature_size=16, sampling_rate=48000, hop_length=480, max_length_s=2, fft_window_size=1024,
                         frequency_min=50, frequency_max=14000, padding="repeatpad").save_pretrained(folder)
    return Path(folder)


def tiny_model_config(num_codebooks: int = 4, cardinality: int = 2048, frame_rate: float = 50.0,
                      segment_duration: float = 2.0) -> ModelConfig:
    """A MAGNeT transformer small enough for a whole generation in well under a second."""
    return ModelConfig(dim=32, num_heads=2, num_layers=2, num_codebooks=num_codebooks, cardinality=cardinality,
                       frame_rate=frame_rate, segment_duration=segment_duration)
