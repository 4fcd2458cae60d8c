"""The ``ast`` embedder: AudioSet label probabilities from the Audio Spectrogram Transformer, for KL.

transformers' ``ASTForAudioClassification`` (default ``MIT/ast-finetuned-audioset-10-10-0.4593``,
527 AudioSet labels, 16 kHz). Like audiocraft's PaSST metric, a clip is split into segments of
the model's input length (10 s here; a trailing piece of 0.15 s or less is dropped unless it is
the only one), each segment gets ``softmax(logits)``, and the clip's vectors are those
per-segment distributions ``[n_segments, labels]``. audiocraft uses PaSST (``hear21passt``,
32 kHz), which is not on PyPI; AST is the AudioSet classifier transformers ships, so KL values
are comparable between magnetkit runs but not digit for digit with audiocraft's tables.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from magnetkit import from_pretrained, load_complete
from magnetkit_embedders.common import ModelOnDevice, clip_lengths
from magnetkit_embedders.config import AstEmbedderConfig

_WHAT = "AST classifier"
_MIN_SEGMENT_SECONDS = 0.15  # audiocraft's PaSST metric ignores shorter segments




class AstEmbedder(ModelOnDevice):
    """Label distributions ``[n_segments, num_labels]`` per clip (``label_probs``)."""

    channels = 1
    per_frame = True
    label_probs = True

    def __init__(self, model: Any, feature_extractor: Any, config: AstEmbedderConfig):
        self.config = config
        self.model, self.feature_extractor = model.eval().requires_grad_(False), feature_extractor
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.dim = int(model.config.num_labels)
        self.segment = round(config.segment_seconds * self.sample_rate)
        self.cache_key = f"ast-1|{config.model}"
        self.device = torch.device("cpu")

    def embed_audio(self, wav: torch.Tensor, lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """[B, C, S] at 16 kHz -> per clip ``[n_segments, num_labels]`` probabilities (float32, CPU)."""
        lengths = clip_lengths(wav, lengths)
        segments, owner = [], []
        for i, (clip, length) in enumerate(zip(wav, lengths)):
            pieces = list(torch.split(clip[:, :length].mean(dim=0).float().cpu(), self.segment))
            kept = [p for p in pieces if p.shape[-1] > _MIN_SEGMENT_SECONDS * self.sample_rate] or pieces[:1]
            segments += [p.numpy() for p in kept]
            owner += [i] * len(kept)
        size = self.config.segment_batch_size
        probs = torch.cat([self._classify(segments[s:s + size]) for s in range(0, len(segments), size)])
        owner_t = torch.tensor(owner)
        return [probs[owner_t == i] for i in range(wav.shape[0])]

    def _classify(self, segments: list) -> torch.Tensor:
        features = self.feature_extractor(segments, sampling_rate=self.sample_rate, return_tensors="pt")
        logits = self.model(input_values=features["input_values"].to(self.device)).logits
        return torch.softmax(logits.float(), dim=-1).cpu()


def factory(config: AstEmbedderConfig) -> AstEmbedder:
    """AudioSet label probabilities (Audio Spectrogram Transformer), for the KL metric."""
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    model = load_complete(ASTForAudioClassification, config.model, what=_WHAT)
    extractor = from_pretrained(ASTFeatureExtractor.from_pretrained, config.model, what=f"{_WHAT} feature extractor")
    return AstEmbedder(model, extractor, config)
