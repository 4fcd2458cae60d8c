"""The ``clap`` embedder: LAION CLAP (transformers' ``ClapModel``) audio and text embeddings.

One unit-norm vector per clip: the clip is cut into windows of the model's input length
(10 s for the LAION checkpoints; the last window is kept when longer than ``min_window_seconds``
or when it is the only one), each window is embedded (shorter ones repeat-padded, as LAION's
``get_audio_embedding_from_data`` does), and the mean is re-normalised. For clips up to 10 s
this is exactly one CLAP call per clip, as in audiocraft's ``CLAPTextConsistencyMetric``;
longer clips are covered whole instead of being randomly cropped. ``embed_text`` gives the
unit-norm text embedding, so the CLAP score is the cosine of the two.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from magnetkit import CheckpointError, from_pretrained, load_complete
from magnetkit_embedders.common import ModelOnDevice, clip_lengths
from magnetkit_embedders.config import ClapEmbedderConfig

_WHAT = "CLAP model"




class ClapEmbedder(ModelOnDevice):
    """CLAP audio embeddings ``[1, projection_dim]`` per clip and text embeddings ``[B, projection_dim]``."""

    channels = 1
    per_frame = False

    def __init__(self, model: Any, tokenizer: Any, feature_extractor: Any, config: ClapEmbedderConfig):
        self.config = config
        self.model, self.tokenizer, self.feature_extractor = model.eval().requires_grad_(False), tokenizer, feature_extractor
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.dim = int(model.config.projection_dim)
        self.window = int(feature_extractor.nb_max_samples)
        self.cache_key = f"clap-1|{config.model}"
        self.device = torch.device("cpu")

    def embed_audio(self, wav: torch.Tensor, lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """[B, C, S] at 48 kHz -> per clip one unit-norm ``[1, D]`` vector (mean over windows)."""
        lengths = clip_lengths(wav, lengths)
        windows, owner = [], []
        for i, (clip, length) in enumerate(zip(wav, lengths)):
            mono = clip[:, :length].mean(dim=0).float().cpu()
            for piece in self._windows(mono):
                windows.append(piece.numpy())
                owner.append(i)
        embeds = torch.cat([self._embed_windows(windows[s:s + self.config.window_batch_size])
                            for s in range(0, len(windows), self.config.window_batch_size)])
        owner_t = torch.tensor(owner)
        out = []
        for i in range(wav.shape[0]):
            out.append(F.normalize(embeds[owner_t == i].mean(dim=0, keepdim=True), dim=-1).cpu())
        return out

    def _windows(self, mono: torch.Tensor) -> list[torch.Tensor]:
        pieces = list(torch.split(mono, self.window))
        minimum = round(self.config.min_window_seconds * self.sample_rate)
        kept = [p for p in pieces if p.shape[-1] >= minimum]
        return kept or pieces[:1]

    def _embed_windows(self, windows: list) -> torch.Tensor:
        # "rand_trunc" never truncates here (windows fit) and, unlike the default "fusion", works
        # for unfused models; "repeatpad" tiles a short window as LAION's own code does.
        features = self.feature_extractor(windows, truncation="rand_trunc", padding="repeatpad",
                                          sampling_rate=self.sample_rate, return_tensors="pt")
        out = self.model.get_audio_features(input_features=features["input_features"].to(self.device),
                                            is_longer=features["is_longer"].to(self.device))
        return F.normalize(out.pooler_output.float(), dim=-1)

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm CLAP text embeddings ``[B, D]`` (CPU)."""
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.config.max_text_tokens,
                                return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return F.normalize(self.model.get_text_features(**tokens).pooler_output.float(), dim=-1).cpu()


def factory(config: ClapEmbedderConfig) -> ClapEmbedder:
    """LAION CLAP audio/text embeddings (CLAP score; FAD on per-clip vectors)."""
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    model = load_complete(ClapModel, config.model, what=_WHAT)
    tokenizer = from_pretrained(AutoTokenizer.from_pretrained, config.model, what=f"{_WHAT} tokenizer")
    extractor = from_pretrained(ClapFeatureExtractor.from_pretrained, config.model, what=f"{_WHAT} feature extractor")
    ids = tokenizer("a calm piano melody")["input_ids"]
    if not [i for i in ids if i not in set(tokenizer.all_special_ids)]:
        raise CheckpointError(f"the tokenizer of {_WHAT} {config.model!r} turns text into no real tokens; "
                              f"is its vocabulary missing?")
    return ClapEmbedder(model, tokenizer, extractor, config)
