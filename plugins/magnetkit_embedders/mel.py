"""The ``mel`` embedder: log-mel statistics over ~1 s windows. No weights, deterministic, offline.

Each window of ``window_seconds`` (hop ``hop_seconds``) becomes the mean and the standard
deviation of its log-mel frames, ``[2 * n_mels]``; a clip shorter than one window is one
window. It is the default embedder: it needs nothing downloaded, so tests, examples and a
quick comparison of two settings always run. It is not comparable with published FAD tables
(use ``vggish`` or ``clap`` for those).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from magnetkit_embedders.common import clip_lengths
from magnetkit_embedders.config import MelEmbedderConfig




class MelEmbedder:
    """Log-mel window statistics: ``embed_audio([B, 1, S]) -> [n_windows, 2 * n_mels]`` per clip."""

    channels = 1

    def __init__(self, config: MelEmbedderConfig | None = None):
        from transformers.audio_utils import mel_filter_bank

        self.config = config or MelEmbedderConfig()
        c = self.config
        self.sample_rate = c.sample_rate
        self.dim = 2 * c.n_mels
        self.per_frame = not c.per_clip
        self.cache_key = "mel-1"
        bank = mel_filter_bank(num_frequency_bins=c.n_fft // 2 + 1, num_mel_filters=c.n_mels, min_frequency=c.fmin,
                               max_frequency=c.fmax or c.sample_rate / 2, sampling_rate=c.sample_rate,
                               norm="slaney", mel_scale="slaney")
        self._bank = torch.from_numpy(np.ascontiguousarray(bank.T)).float()  # [n_mels, F]
        self._window = torch.hann_window(c.n_fft)
        self._frames_per_window = max(1, round(c.window_seconds * c.sample_rate / c.hop_length))
        self._frames_per_hop = max(1, round(c.hop_seconds * c.sample_rate / c.hop_length))

    def to(self, device: torch.device | str) -> "MelEmbedder":
        """Compute on ``device``."""
        self._bank, self._window = self._bank.to(device), self._window.to(device)
        return self

    def log_mel(self, mono: torch.Tensor) -> torch.Tensor:
        """``[S]`` audio -> ``[frames, n_mels]`` natural-log mel power (floor 1e-6)."""
        c = self.config
        if mono.shape[-1] < c.n_fft // 2 + 1:  # reflect padding needs more samples than half a frame
            mono = torch.nn.functional.pad(mono, (0, c.n_fft // 2 + 1 - mono.shape[-1]))
        spec = torch.stft(mono.float(), c.n_fft, c.hop_length, window=self._window, center=True,
                          return_complex=True).abs().pow(2)  # [F, frames]
        return torch.log(self._bank @ spec + 1e-6).T

    def embed_audio(self, wav: torch.Tensor, lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """[B, C, S] at ``sample_rate`` -> per clip ``[n_windows, 2 * n_mels]`` (float32, CPU)."""
        lengths = clip_lengths(wav, lengths)
        out = []
        for clip, length in zip(wav, lengths):
            frames = self.log_mel(clip[:, :length].mean(dim=0))  # [T, n_mels]
            out.append(self._pool(frames).cpu())
        return out

    def _pool(self, frames: torch.Tensor) -> torch.Tensor:
        size, hop = self._frames_per_window, self._frames_per_hop
        if self.config.per_clip or frames.shape[0] <= size:
            windows = frames[None]
        else:
            windows = frames.unfold(0, size, hop).transpose(1, 2)  # [W, size, n_mels]
        return torch.cat([windows.mean(dim=1), windows.std(dim=1, unbiased=False)], dim=-1)


def factory(config: MelEmbedderConfig) -> MelEmbedder:
    """Log-mel statistics over ~1 s windows: weight-free and deterministic (the default)."""
    return MelEmbedder(config)
