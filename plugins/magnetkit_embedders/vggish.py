"""The ``vggish`` embedder: Google's VGGish (Hershey et al. 2017), the classic FAD embedder.

A port of the model and its input pipeline (TensorFlow ``models/research/audioset/vggish``):
16 kHz mono; 25 ms periodic-Hann frames every 10 ms, 512-point FFT magnitude; 64 mel bands
(HTK mel, 125-7500 Hz); ``log(mel + 0.01)``; non-overlapping 0.96 s examples of 96 frames
(a clip shorter than one example is zero-padded to one); a VGG of four conv blocks and three
fully connected layers -> one 128-d vector per 0.96 s. As Google's FAD and the
``frechet_audio_distance`` package use it: the raw embedding, without the final ReLU and
without the PCA/quantisation post-processing (both available as options).

There is no maintained PyPI port without torchaudio, so the weights are the widely used
PyTorch conversion of Google's checkpoint (harritaylor/torchvggish release v0.1), downloaded
once into the torch hub cache, or a local copy of that file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from magnetkit import CheckpointError, HubUnavailableError
from magnetkit_embedders.common import ModelOnDevice, clip_lengths
from magnetkit_embedders.config import PCA_URL, WEIGHTS_URL, VggishEmbedderConfig


SAMPLE_RATE = 16000
_WINDOW, _HOP, _FFT = 400, 160, 512  # 25 ms, 10 ms at 16 kHz; FFT size: next power of two
_BANDS, _FMIN, _FMAX, _LOG_OFFSET = 64, 125.0, 7500.0, 0.01
_EXAMPLE_FRAMES = 96  # 0.96 s, hop 0.96 s




# ------------------------------------------------------------------------------- features
def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + hz / 700.0)


def mel_matrix() -> np.ndarray:
    """``[257, 64]`` triangular mel weights, as VGGish's ``spectrogram_to_mel_matrix`` (bin 0 zeroed)."""
    bins_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, _FFT // 2 + 1))
    edges = np.linspace(_hz_to_mel(np.array(_FMIN)), _hz_to_mel(np.array(_FMAX)), _BANDS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bins_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin carries no band, as in the reference
    return weights


def log_mel_examples(mono: np.ndarray) -> np.ndarray:
    """16 kHz mono ``[S]`` -> ``[n_examples, 96, 64]`` log-mel examples (float64)."""
    needed = _WINDOW + (_EXAMPLE_FRAMES - 1) * _HOP
    if mono.shape[0] < needed:  # shorter than one example: zero-pad to exactly one
        mono = np.pad(mono, (0, needed - mono.shape[0]))
    n_frames = 1 + (mono.shape[0] - _WINDOW) // _HOP
    frames = np.lib.stride_tricks.sliding_window_view(mono, _WINDOW)[::_HOP][:n_frames]
    window = 0.5 - 0.5 * np.cos(2 * np.pi / _WINDOW * np.arange(_WINDOW))  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, _FFT))
    log_mel = np.log(magnitude @ mel_matrix() + _LOG_OFFSET)  # [frames, 64]
    n_examples = 1 + (log_mel.shape[0] - _EXAMPLE_FRAMES) // _EXAMPLE_FRAMES
    return np.stack([log_mel[i * _EXAMPLE_FRAMES:(i + 1) * _EXAMPLE_FRAMES] for i in range(n_examples)])


# ---------------------------------------------------------------------------------- model
class Vggish(torch.nn.Module):
    """VGGish: ``[N, 1, 96, 64]`` log-mel examples -> ``[N, 128]`` (torchvggish's parameter names)."""

    def __init__(self, final_relu: bool = False):
        super().__init__()
        layers: list[torch.nn.Module] = []
        channels = 1
        for width in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if width == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
            else:
                layers += [torch.nn.Conv2d(channels, int(width), 3, padding=1), torch.nn.ReLU(inplace=True)]
                channels = int(width)
        self.features = torch.nn.Sequential(*layers)
        head: list[torch.nn.Module] = [torch.nn.Linear(512 * 4 * 6, 4096), torch.nn.ReLU(True),
                                       torch.nn.Linear(4096, 4096), torch.nn.ReLU(True), torch.nn.Linear(4096, 128)]
        self.embeddings = torch.nn.Sequential(*(head + [torch.nn.ReLU(True)] if final_relu else head))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 1, 96, 64]`` -> ``[N, 128]``."""
        x = self.features(x)  # [N, 512, 6, 4]
        # TensorFlow flattens channels-last: [N, 6, 4, 512]
        return self.embeddings(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))


class VggishEmbedder(ModelOnDevice):
    """VGGish vectors ``[n_examples, 128]`` per clip, one per 0.96 s."""

    sample_rate = SAMPLE_RATE
    channels = 1
    dim = 128
    per_frame = True

    def __init__(self, model: Vggish, config: VggishEmbedderConfig, pca: dict[str, torch.Tensor] | None = None):
        self.config, self.model = config, model.eval().requires_grad_(False)
        self.pca = pca
        self.cache_key = f"vggish-1|{config.weights}|{config.final_relu}|{config.pca}"
        self.device = torch.device("cpu")

    def embed_audio(self, wav: torch.Tensor, lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """[B, C, S] at 16 kHz -> per clip ``[n_examples, 128]`` (float32, CPU)."""
        lengths = clip_lengths(wav, lengths)
        examples = [log_mel_examples(clip[:, :n].mean(dim=0).double().cpu().numpy()) for clip, n in zip(wav, lengths)]
        stacked = torch.from_numpy(np.concatenate(examples)).float()[:, None]  # [N, 1, 96, 64]
        size = self.config.example_batch_size
        out = torch.cat([self.model(stacked[s:s + size].to(self.device)).float().cpu()
                         for s in range(0, stacked.shape[0], size)])
        if self.pca is not None:
            out = self._postprocess(out)
        return list(torch.split(out, [len(e) for e in examples]))

    def _postprocess(self, emb: torch.Tensor) -> torch.Tensor:
        """AudioSet's release format: PCA (with whitening), clip to [-2, 2], quantise to 0..255."""
        projected = (self.pca["pca_eigen_vectors"] @ (emb.T.double() - self.pca["pca_means"].reshape(-1, 1))).T
        return torch.round((projected.clamp(-2.0, 2.0) + 2.0) * (255.0 / 4.0)).float()


# -------------------------------------------------------------------------------- loading
def load_state(source: str, filename: str, what: str) -> dict[str, torch.Tensor]:
    """A state dict from a URL (torch hub cache), a file, or a folder holding ``filename``.

    Raises:
        HubUnavailableError: a URL that is not cached and cannot be downloaded.
        CheckpointError: a missing or unreadable file.
    """
    if source.startswith(("http://", "https://")):
        hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
        cached = hub_dir / source.rsplit("/", 1)[-1]
        if not cached.is_file():
            try:
                torch.hub.download_url_to_file(source, str(cached.with_suffix(".partial")), progress=False)
                os.replace(cached.with_suffix(".partial"), cached)
            except Exception as exc:  # offline, DNS, HTTP error
                raise HubUnavailableError(
                    f"{what} {source!r} is not in the torch hub cache ({hub_dir}) and cannot be downloaded: "
                    f"fetch the file on a machine with network and pass its local path instead") from exc
        path = cached
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            path = path / filename
        if not path.is_file():
            raise CheckpointError(f"{what} file {str(path)!r} does not exist")
    try:
        # the PCA file holds numpy arrays: allow exactly numpy's array reconstruction, nothing else
        with torch.serialization.safe_globals(_numpy_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read {what} {str(path)!r}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{what} {str(path)!r} is not a state dict")
    return state


def _numpy_globals() -> list:
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]


def factory(config: VggishEmbedderConfig) -> VggishEmbedder:
    """VGGish (16 kHz, one 128-d vector per 0.96 s): published FAD tables' embedder."""
    model = Vggish(final_relu=config.final_relu)
    state = load_state(config.weights, WEIGHTS_URL.rsplit("/", 1)[-1], "VGGish weights")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"VGGish weights {config.weights!r} do not fit the model: "
                              f"{str(exc).splitlines()[0]}") from exc
    pca = None
    if config.pca:
        raw = load_state(config.pca_weights, PCA_URL.rsplit("/", 1)[-1], "VGGish PCA parameters")
        pca = {k: torch.as_tensor(np.asarray(raw[k])).double() for k in ("pca_eigen_vectors", "pca_means")}
    return VggishEmbedder(model, config, pca)
