"""The ``speccodec`` codec: k-means residual VQ over a fixed STFT representation, Griffin-Lim decoding.

Why not a neural codec: a 2.6M-parameter EnCodec-style codec trained for 40 minutes on this
project's 2-core CPU kept pitch on only ~31% of clips (shared/PITFALLS.md). Here nothing is
trained by gradient descent: the representation is fixed and only the codebooks are fitted
(k-means, minutes on one core), and the decoder needs no weights at all.

One token (20 ms, 50 Hz) covers two STFT frames (n_fft 1024, hop 160 at 16 kHz). Per token:

* **shape** — log(|X| / token gain + floor) of both frames, plus each frame's YIN pitch in
  semitones times ``pitch_weight``. The pitch dimensions carry no audio (the decoder ignores
  them); they make k-means clusters pitch-pure, which is what keeps f0 through quantisation.
  Quantised by ``shape_levels`` residual k-means codebooks.
* **gain** — log max |X| of each frame, quantised by a 2-D k-means codebook.

Codebook order (coarse to fine, as MAGNeT's stages expect): shape level 0 (pitch, timbre,
silence), gain (loudness envelope, hence onsets), then shape levels 1.. (timbre detail).

Decoding rebuilds the magnitude and recovers phase with fast Griffin-Lim (Perraudin et al.
2013) started from a phase-vocoder estimate: each bin advances at the frequency of its nearest
spectral peak, so steady notes start consistent and do not warble (random starting phases make
sustained notes flutter enough to read as extra onsets).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from magnetkit import CheckpointError, UsageError
from magnetkit_synth.analysis import HOP as PITCH_HOP
from magnetkit_synth.analysis import f0_track
from magnetkit_speccodec.config import SpecCodecConfig, SpecParams

FORMAT = "magnetkit-speccodec"
FORMAT_VERSION = 1
CONFIG_FILE = "speccodec.json"
WEIGHTS_FILE = "speccodec.safetensors"
SHIPPED = Path(__file__).parent / "assets"  # the codec fitted once and shipped with the plugin

DEFAULT_GRIFFIN_LIM_ITERS: int = SpecCodecConfig.model_fields["griffin_lim_iters"].default


# ------------------------------------------------------------------------------ representation
def frame_pitch(audio: np.ndarray, params: SpecParams, frames: int) -> np.ndarray:
    """Semitones re 55 Hz of each STFT frame (``unvoiced_pitch`` where YIN finds none) -> [frames]."""
    f0, _ = f0_track(audio, params.sample_rate)
    f0 = f0[:: params.hop // PITCH_HOP][:frames]
    f0 = np.pad(f0, (0, frames - len(f0)), constant_values=np.nan)
    voiced = ~np.isnan(f0)
    semis = np.full(frames, params.unvoiced_pitch, dtype=np.float64)
    semis[voiced] = 12.0 * np.log2(f0[voiced] / 55.0)
    return semis


def token_features(wav: torch.Tensor, params: SpecParams) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, S]`` float audio -> (shape vectors [B, T, P*F + P], log frame gains [B, T, P]), T = ceil(S / token hop)."""
    batch, samples = wav.shape
    per, bins = params.frames_per_token, params.n_fft // 2 + 1
    token_hop = params.hop * per
    tokens = max(1, math.ceil(samples / token_hop))
    wav = torch.nn.functional.pad(wav.float(), (0, tokens * token_hop - samples))
    window = torch.hann_window(params.n_fft)
    mag = torch.stft(wav, params.n_fft, params.hop, window=window, center=True, return_complex=True).abs()
    mag = mag[..., : tokens * per].transpose(1, 2).reshape(batch, tokens, per, bins)  # [B, T, P, F]
    gain = mag.amax(-1).clamp(min=params.gain_floor)  # [B, T, P]
    token_gain = gain.amax(-1, keepdim=True)  # [B, T, 1]
    shape = torch.log(mag / token_gain[..., None] + params.floor).reshape(batch, tokens, per * bins)
    pitch = np.stack([frame_pitch(item, params, tokens * per) for item in wav.numpy()])  # [B, T*P]
    pitch = torch.from_numpy(pitch).float().reshape(batch, tokens, per) * params.pitch_weight
    return torch.cat([shape, pitch], -1), torch.log(gain)


def magnitudes(shape: torch.Tensor, log_gain: torch.Tensor, params: SpecParams) -> torch.Tensor:
    """Quantised shape [B, T, P*F + P] and log gains [B, T, P] -> STFT magnitudes [B, F, T*P]."""
    batch, tokens = shape.shape[:2]
    per, bins = params.frames_per_token, params.n_fft // 2 + 1
    gate = params.floor * params.decode_gate
    rel = (shape[..., : per * bins].reshape(batch, tokens, per, bins).exp() - gate).clamp(min=0)
    # Each frame's own peak back to 1, then its own gain: the token gain only normalised the shape.
    rel = rel / rel.amax(-1, keepdim=True).clamp(min=1e-6)
    mag = rel * log_gain.exp()[..., None]
    return mag.reshape(batch, tokens * per, bins).transpose(1, 2)


# ------------------------------------------------------------------------------- phase recovery
def phase_vocoder_init(mag: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Starting phases [B, F, N]: each bin advances at the frequency of its nearest spectral peak."""
    bins = mag.shape[-2]
    logmag = torch.log(mag + 1e-6)
    k = torch.arange(bins).view(1, bins, 1).expand_as(logmag)
    below = torch.cat([logmag[:, :1], logmag[:, :-1]], 1)
    above = torch.cat([logmag[:, 1:], logmag[:, -1:]], 1)
    peak = (logmag > below) & (logmag >= above)
    # Quadratic interpolation of the log-magnitude peak gives its frequency to a fraction of a bin.
    curve = below - 2 * logmag + above
    safe = torch.where(curve.abs() > 1e-9, curve, torch.ones_like(curve))
    offset = torch.where(curve.abs() > 1e-9, 0.5 * (below - above) / safe, torch.zeros_like(curve)).clamp(-0.5, 0.5)
    far = bins * 4
    left = torch.where(peak, k, torch.full_like(k, -far)).cummax(1).values
    right = torch.where(peak, k, torch.full_like(k, far)).flip(1).cummin(1).values.flip(1)
    owner = torch.where((k - left) <= (right - k), left, right)
    owner = torch.where(owner.abs() >= far, k, owner).clamp(0, bins - 1)  # a frame with no peak
    freq = torch.gather(k + offset, 1, owner)  # in bins
    phase = torch.cumsum(2 * math.pi * freq * hop / n_fft, dim=-1)
    # Bins of one peak's main lobe alternate by pi under a Hann window centred in the frame.
    return phase + math.pi * (k - owner)


def griffin_lim(mag: torch.Tensor, n_fft: int, hop: int, length: int, iters: int,
                momentum: float = 0.99) -> torch.Tensor:
    """Audio [B, length] whose STFT magnitude approximates ``mag`` [B, F, N] (fast Griffin-Lim)."""
    window = torch.hann_window(n_fft)
    angles = torch.polar(torch.ones_like(mag), phase_vocoder_init(mag, n_fft, hop))
    previous = torch.zeros_like(angles)
    for _ in range(iters):
        wav = torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=length)
        rebuilt = torch.stft(wav, n_fft, hop, window=window, center=True, return_complex=True)
        # Momentum on the projection (Perraudin et al. 2013) converges in far fewer iterations.
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = angles / angles.abs().clamp(min=1e-16)
    return torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=length)


# ---------------------------------------------------------------------------------- the codec
def nearest(vectors: torch.Tensor, codebook: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Index of the nearest codebook row (squared Euclidean) for each row of ``vectors`` [N, D] -> [N]."""
    norms = (codebook ** 2).sum(1)
    out = [(norms[None, :] - 2 * vectors[i:i + chunk] @ codebook.T).argmin(1) for i in range(0, len(vectors), chunk)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


class SpecCodec(torch.nn.Module):
    """16 kHz mono audio <-> [B, 1 + shape_levels, T] codes at 50 Hz (see the module docstring)."""

    def __init__(self, params: SpecParams, shape_books: list[torch.Tensor], gain_book: torch.Tensor,
                 griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM_ITERS, fit_info: dict[str, Any] | None = None):
        super().__init__()
        if len(shape_books) != params.shape_levels:
            raise CheckpointError(f"speccodec: {len(shape_books)} shape codebooks, config says {params.shape_levels}")
        self.params = params
        self.sample_rate: int = params.sample_rate
        self.channels: int = 1
        self.hop_length: int = params.hop * params.frames_per_token
        self.frame_rate: float = params.sample_rate / self.hop_length
        self.num_codebooks: int = params.shape_levels + 1
        self.cardinality: int = params.cardinality
        self.griffin_lim_iters = griffin_lim_iters
        self.fit_info = dict(fit_info or {})
        self.register_buffer("shape_books", torch.stack([b.float() for b in shape_books]))  # [L, card, D]
        self.register_buffer("gain_book", gain_book.float())  # [card, P]

    # codes layout: [shape level 0, gain, shape level 1, ...]
    def _shape_rows(self) -> list[int]:
        return [0] + list(range(2, self.num_codebooks))

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S]`` float audio at 16 kHz -> ``[B, K, ceil(S / 320)]`` int64 codes."""
        if wav.dim() != 3 or wav.shape[1] != 1 or wav.shape[-1] == 0:
            raise UsageError(f"speccodec encodes mono audio shaped [B, 1, S] at {self.sample_rate} Hz, "
                             f"got {tuple(wav.shape)}")
        device = wav.device
        shape, log_gain = token_features(wav[:, 0].detach().float().cpu(), self.params)
        batch, tokens = shape.shape[:2]
        codes = torch.empty(batch, self.num_codebooks, tokens, dtype=torch.long)
        residual = shape.reshape(batch * tokens, -1)
        for level, row in enumerate(self._shape_rows()):
            book = self.shape_books[level].cpu()
            index = nearest(residual, book)
            residual = residual - book[index]
            codes[:, row] = index.view(batch, tokens)
        codes[:, 1] = nearest(log_gain.reshape(batch * tokens, -1), self.gain_book.cpu()).view(batch, tokens)
        return codes.to(device)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, K, T]`` int64 codes -> ``[B, 1, T * 320]`` float audio."""
        if codes.dim() != 3 or codes.shape[1] != self.num_codebooks or codes.shape[-1] == 0:
            raise UsageError(f"speccodec decodes codes shaped [B, {self.num_codebooks}, T], got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or int(codes.min()) < 0 or int(codes.max()) >= self.cardinality:
            raise UsageError(f"speccodec codes must be integers in [0, {self.cardinality}); got dtype {codes.dtype}, "
                             f"range [{codes.min().item()}, {codes.max().item()}]")
        device = codes.device
        codes = codes.long().cpu()
        shape = sum(self.shape_books[level].cpu()[codes[:, row]] for level, row in enumerate(self._shape_rows()))
        log_gain = self.gain_book.cpu()[codes[:, 1]]  # [B, T, P]
        mag = magnitudes(shape, log_gain, self.params)  # [B, F, T*P]
        # istft with center=True wants one frame beyond the last hop; repeat the last one.
        mag = torch.cat([mag, mag[..., -1:]], -1)
        length = codes.shape[-1] * self.hop_length
        wav = griffin_lim(mag, self.params.n_fft, self.params.hop, length, self.griffin_lim_iters)
        return wav.unsqueeze(1).to(device)

    def save(self, folder: str | Path) -> Path:
        """Write speccodec.json + speccodec.safetensors (codebooks in float16) into ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"shape.{i}": book.half().contiguous() for i, book in enumerate(self.shape_books)}
        tensors["gain"] = self.gain_book.float().contiguous()
        save_file(tensors, str(folder / WEIGHTS_FILE))
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "params": self.params.model_dump(), "fit": self.fit_info}
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, frame_rate={self.frame_rate:g}, num_codebooks={self.num_codebooks}, "
                f"cardinality={self.cardinality}, griffin_lim_iters={self.griffin_lim_iters}")


def load_speccodec(folder: str | Path | None = None, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM_ITERS) -> SpecCodec:
    """A fitted codec from ``folder`` (None = the one shipped with the plugin).

    Raises:
        CheckpointError: the folder, its files or their contents are missing or not a speccodec.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder).expanduser() if folder else SHIPPED
    config, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not config.is_file() or not weights.is_file():
        raise CheckpointError(f"speccodec: {str(path)!r} needs {CONFIG_FILE} and {WEIGHTS_FILE} "
                              f"(write them with `magnetkit fit-codec`)")
    try:
        meta = json.loads(config.read_text())
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"speccodec: {str(config)!r} is not a {FORMAT} file")
        if meta.get("version") != FORMAT_VERSION:
            raise CheckpointError(f"speccodec: {str(config)!r} has version {meta.get('version')}, "
                                  f"this magnetkit reads {FORMAT_VERSION}")
        params = SpecParams.model_validate(meta["params"])
        tensors = load_file(str(weights))
        shape_books = [tensors[f"shape.{i}"] for i in range(params.shape_levels)]
        gain_book = tensors["gain"]
    except (json.JSONDecodeError, KeyError, ValueError, SafetensorError, OSError) as exc:
        raise CheckpointError(f"speccodec: cannot read {str(path)!r}: {str(exc).splitlines()[0]}") from exc
    dim = params.frames_per_token * (params.n_fft // 2 + 2)
    for name, book, width in [(f"shape.{i}", b, dim) for i, b in enumerate(shape_books)] + \
            [("gain", gain_book, params.frames_per_token)]:
        if tuple(book.shape) != (params.cardinality, width):
            raise CheckpointError(f"speccodec: {name} is {tuple(book.shape)}, expected ({params.cardinality}, {width})")
    return SpecCodec(params, shape_books, gain_book, griffin_lim_iters, meta.get("fit"))


def factory(config: SpecCodecConfig) -> SpecCodec:
    """Spectral RVQ codec for magnetkit's synthetic sounds: 16 kHz mono, 50 Hz, 4 x 512 codes, no neural net."""
    return load_speccodec(config.model, config.griffin_lim_iters)
