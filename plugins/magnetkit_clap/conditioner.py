"""The ``clap`` conditioner: a frozen CLAP (transformers' ``ClapModel``) and a learned projection.

Like audiocraft's ``CLAPEmbeddingConditioner`` without its optional quantiser: a text becomes
CLAP's unit-norm text embedding, a clip CLAP's audio embedding averaged over sliding windows
(re-normalised when ``normalize``), and either is projected to the transformer width as one
condition token ``[B, 1, D]``. Because CLAP puts text and audio in one space, a model can be
trained on unlabelled audio (``condition_audio``) and prompted with text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from magnetkit import CheckpointError, Condition, UsageError, convert_audio, from_pretrained, load_complete
from magnetkit_clap.config import ClapConditionerConfig

_WHAT = "CLAP model"
_PROBE_TEXT = "a calm piano melody with soft drums"


@dataclass
class ClapBackbone:
    """The frozen parts: CLAP itself, its tokenizer and its feature extractor (not in any state_dict)."""

    model: Any  # transformers.ClapModel
    tokenizer: Any
    feature_extractor: Any


def load_clap(source: str) -> ClapBackbone:
    """CLAP model, tokenizer and feature extractor from a hub id or a folder, checked for use.

    Raises:
        HubUnavailableError: a hub id that is not cached while offline.
        CheckpointError: something missing or incomplete, or a tokenizer without a vocabulary.
    """
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    model = load_complete(ClapModel, source, what=_WHAT)
    tokenizer = from_pretrained(AutoTokenizer.from_pretrained, source, what=f"{_WHAT} tokenizer")
    feature_extractor = from_pretrained(ClapFeatureExtractor.from_pretrained, source,
                                        what=f"{_WHAT} feature extractor")
    _check_tokenizer(tokenizer, model.config.text_config.vocab_size, source)
    return ClapBackbone(model.eval().requires_grad_(False), tokenizer, feature_extractor)


def _check_tokenizer(tokenizer: Any, vocab_size: int, source: str) -> None:
    # A tokenizer built without its vocabulary files still constructs in transformers 5 and
    # silently maps every text to <unk> (or to nothing): every prompt would condition alike.
    ids = tokenizer(_PROBE_TEXT)["input_ids"]
    special = set(tokenizer.all_special_ids)
    if not [i for i in ids if i not in special]:
        raise CheckpointError(f"the tokenizer of {_WHAT} {source!r} turns text into no real tokens; "
                              f"is its vocabulary missing?")
    if len(tokenizer) > vocab_size:
        raise CheckpointError(f"the tokenizer of {_WHAT} {source!r} has {len(tokenizer)} tokens but the text "
                              f"model only {vocab_size} embeddings")


class ClapConditioner(torch.nn.Module):
    """CLAP embedding -> ``Linear(projection_dim, output_dim)`` -> one condition token per item."""

    def __init__(self, backbone: ClapBackbone, output_dim: int, config: ClapConditionerConfig | None = None):
        super().__init__()
        self.config = config or ClapConditionerConfig()
        self.output_dim = output_dim
        self.clap_dim: int = int(backbone.model.config.projection_dim)
        self.output_proj = torch.nn.Linear(self.clap_dim, output_dim)
        # Held in __dict__ so that CLAP stays frozen and out of state_dict(), parameters() and
        # .to(): a trained MAGNeT checkpoint stores only the projection, as audiocraft's does.
        self.__dict__["backbone"] = backbone
        fe = backbone.feature_extractor
        self.clap_sample_rate: int = int(fe.sampling_rate)
        max_samples = int(fe.nb_max_samples)
        window = self.config.audio_window_seconds
        self.window_samples = max_samples if window is None else round(window * self.clap_sample_rate)
        if self.window_samples > max_samples:
            raise UsageError(f"conditioner.audio_window_seconds: {window:g} is longer than CLAP's "
                             f"{max_samples / self.clap_sample_rate:g} s input")
        self.stride_samples = max(1, round(self.config.audio_stride_seconds * self.clap_sample_rate))

    # ---------------------------------------------------------------------------- text
    def forward(self, texts: Sequence[str | None]) -> Condition:
        """Condition ``[B, 1, D]`` for each text; ``None`` or ``""`` is the null condition (zeros, mask 0)."""
        real = [i for i, text in enumerate(texts) if text]
        embeds = torch.zeros(len(texts), self.clap_dim, device=self._device())
        if real:
            embeds[real] = self.text_embeddings([texts[i] for i in real])
        mask = torch.zeros(len(texts), 1, dtype=torch.long, device=self._device())
        mask[real] = 1
        return self._project(embeds, mask)

    @torch.no_grad()
    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """CLAP's unit-norm text embeddings ``[B, projection_dim]`` (before the learned projection)."""
        clap = self._clap()
        tokens = self.backbone.tokenizer(list(texts), padding=True, truncation=True,
                                         max_length=self.config.max_text_tokens, return_tensors="pt")
        tokens = {k: v.to(self._device()) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return clap.get_text_features(**tokens).pooler_output.float()

    # --------------------------------------------------------------------------- audio
    def condition_audio(self, wav: torch.Tensor, sample_rate: int) -> Condition:
        """Condition ``[B, 1, D]`` from clips ``[B, C, S]``: CLAP's audio embedding, for captionless training."""
        return self._project(self.audio_embeddings(wav, sample_rate),
                             torch.ones(wav.shape[0], 1, dtype=torch.long, device=self._device()))

    @torch.no_grad()
    def audio_embeddings(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """CLAP audio embeddings ``[B, projection_dim]``, averaged over sliding windows of each clip."""
        if wav.dim() != 3 or wav.shape[-1] == 0:
            raise UsageError(f"CLAP audio conditioning takes [B, C, S] audio, got {tuple(wav.shape)}")
        mono = convert_audio(wav.detach().float().cpu(), sample_rate, self.clap_sample_rate, 1)[:, 0]  # [B, S']
        windows, owners = [], []
        for item, clip in enumerate(mono):
            # Windows no longer than CLAP's input: the feature extractor then pads rather than
            # cropping at random ("rand_trunc"), so an embedding is a function of the audio alone.
            if clip.shape[-1] > self.window_samples:
                clip_windows = clip.unfold(-1, self.window_samples, self.stride_samples)
            else:
                clip_windows = clip[None]
            windows.extend(clip_windows.numpy().astype(np.float32))
            owners.extend([item] * clip_windows.shape[0])
        embeds = torch.cat([self._embed_windows(windows[i:i + self.config.audio_batch_size])
                            for i in range(0, len(windows), self.config.audio_batch_size)])
        owner = torch.tensor(owners, device=embeds.device)
        summed = torch.zeros(wav.shape[0], self.clap_dim, device=embeds.device).index_add_(0, owner, embeds)
        mean = summed / torch.bincount(owner, minlength=wav.shape[0]).clamp(min=1)[:, None]
        return F.normalize(mean, dim=-1) if self.config.normalize else mean

    def _embed_windows(self, windows: list[np.ndarray]) -> torch.Tensor:
        clap = self._clap()
        features = self.backbone.feature_extractor(windows, truncation="rand_trunc",
                                                   sampling_rate=self.clap_sample_rate, return_tensors="pt")
        return clap.get_audio_features(input_features=features["input_features"].to(self._device()),
                                       is_longer=features["is_longer"].to(self._device())).pooler_output.float()

    # ---------------------------------------------------------------------------- shared
    def _project(self, embeds: torch.Tensor, mask: torch.Tensor) -> Condition:
        out = self.output_proj(embeds.to(self.output_proj.weight.dtype))[:, None]  # [B, 1, D]
        return Condition(out * mask[..., None].to(out.dtype), mask)

    def _device(self) -> torch.device:
        return self.output_proj.weight.device

    def _clap(self):
        """The frozen CLAP, moved next to the projection on first use after a ``.to()``."""
        model = self.backbone.model
        if next(model.parameters()).device != self._device():
            model.to(self._device())
        return model

    def extra_repr(self) -> str:
        return f"clap_dim={self.clap_dim}, output_dim={self.output_dim}, normalize={self.config.normalize}"


def factory(config: ClapConditionerConfig, *, output_dim: int) -> ClapConditioner:
    """CLAP text (or audio) embedding, projected to the transformer width (audiocraft's CLAP conditioner)."""
    return ClapConditioner(load_clap(config.model), output_dim, config)
