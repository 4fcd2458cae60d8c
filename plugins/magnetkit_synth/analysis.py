"""Signal-processing measurements of a clip: f0, onsets, tonality, spectrum shape -> attributes.

These are the judge of codec fidelity and of prompt adherence, so they are plain numpy, fixed
(nothing learned), and their accuracy on clean dataset clips is measured by `attribute_accuracy`
(`python -m magnetkit_synth.analysis` prints it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

import numpy as np

from magnetkit_synth.dataset import SAMPLE_RATE, Attributes

HOP = 80  # 5 ms analysis hop at 16 kHz: onset times need a finer grid than the 20 ms tolerance
F0_MIN, F0_MAX = 50.0, 1500.0
YIN_WINDOW = 512  # integration window; with the largest lag the frame is 832 samples (52 ms)
YIN_THRESHOLD = 0.15  # cumulative-mean-normalised difference below which a lag counts (de Cheveigné & Kawahara 2002)
VOICED_THRESHOLD = 0.25  # aperiodicity above which a frame is not pitched
ACTIVE_DB = -35.0  # frames this far below the loudest frame are treated as silence

# Decision boundaries, set in the gaps the dataset leaves between classes (see dataset.py).
REGISTER_F0_HZ = (155.0, 466.0)  # geometric middles of the gaps between MIDI 47/55 and 66/74
REGISTER_CENTROID_HZ = (320.0, 1100.0)  # drums: spectral centroid of the kit (measured 160-215 / 470-720 / 1690-2010)
FAST_IOI_S = 0.25  # median inter-onset interval below this is "fast"
# Energy-weighted YIN aperiodicity below which a clip is pitched: clean tonal clips measure <= 0.12,
# noise drums >= 0.32 (the short kick body is the only periodic part of a beat).
TONAL_APERIODICITY = 0.2


# -------------------------------------------------------------------------------- utilities
def _to_mono(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float64)
    return wav.mean(0) if wav.ndim == 2 else wav


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Centred frames [N, length] every ``hop`` samples (zero padded at both ends)."""
    pad = np.pad(x, (length // 2, length // 2 + hop))
    count = 1 + len(x) // hop
    idx = np.arange(length)[None, :] + hop * np.arange(count)[:, None]
    return pad[idx]


def frame_times(num_frames: int, hop: int = HOP, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Centre time (s) of each analysis frame."""
    return np.arange(num_frames) * hop / sr


def _active(wav: np.ndarray, length: int = 512) -> np.ndarray:
    """Boolean per analysis frame: louder than `ACTIVE_DB` below the loudest frame."""
    rms = np.sqrt((_frames(wav, length, HOP) ** 2).mean(1) + 1e-20)
    db = 20 * np.log10(rms / (rms.max() + 1e-20) + 1e-12)
    return db > ACTIVE_DB


# ----------------------------------------------------------------------------------------- f0
def f0_track(wav: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """YIN f0 per 5 ms frame: (f0 in Hz with NaN where unvoiced or silent [N], aperiodicity [N])."""
    x = _to_mono(wav)
    tau_min, tau_max = int(sr / F0_MAX), int(np.ceil(sr / F0_MIN))
    frames = _frames(x, YIN_WINDOW + tau_max, HOP)  # [N, W + tau_max]
    nfft = 1 << int(np.ceil(np.log2(frames.shape[1] + YIN_WINDOW)))
    spec = np.fft.rfft(frames, nfft)
    head = np.fft.rfft(frames[:, :YIN_WINDOW], nfft)
    r = np.fft.irfft(np.conj(head) * spec, nfft)[:, : tau_max + 1]  # r(tau) = sum_j x_j x_{j+tau}
    energy = np.cumsum(np.pad(frames ** 2, ((0, 0), (1, 0))), axis=1)
    e_tau = energy[:, YIN_WINDOW: YIN_WINDOW + tau_max + 1] - energy[:, : tau_max + 1]
    diff = np.maximum(e_tau[:, :1] + e_tau - 2 * r, 0.0)  # d(tau), YIN step 2
    cum = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, tau_max + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / (cum + 1e-12)  # YIN step 3
    lags = np.arange(tau_max + 1)
    search = cmnd[:, tau_min:]
    # YIN step 4: the first dip below the threshold (then its local minimum), else the global minimum.
    below = search < YIN_THRESHOLD
    first = np.where(below.any(1), below.argmax(1), search.argmin(1))
    tau = first + tau_min
    rows = np.arange(len(tau))
    while True:  # walk down to the bottom of the dip
        nxt = np.minimum(tau + 1, tau_max)
        move = (cmnd[rows, nxt] < cmnd[rows, tau]) & (tau < tau_max)
        if not move.any():
            break
        tau = np.where(move, nxt, tau)
    aper = cmnd[rows, tau]
    # Parabolic interpolation of the dip (YIN step 5) for sub-sample lags.
    left, right = np.maximum(tau - 1, 0), np.minimum(tau + 1, tau_max)
    a, b, c = cmnd[rows, left], cmnd[rows, tau], cmnd[rows, right]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    lag = lags[tau] + np.clip(shift, -0.5, 0.5)
    f0 = sr / lag
    voiced = (aper < VOICED_THRESHOLD) & _active(x)[: len(f0)]
    return np.where(voiced, f0, np.nan), aper


def median_f0(wav: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Median f0 (Hz) of the voiced frames; NaN when nothing is pitched."""
    f0, _ = f0_track(wav, sr)
    voiced = f0[~np.isnan(f0)]
    return float(np.median(voiced)) if len(voiced) else float("nan")


# ------------------------------------------------------------------------------------- onsets
def onset_strength(wav: np.ndarray) -> np.ndarray:
    """Spectral flux of log-compressed magnitudes per 5 ms frame, normalised to max 1."""
    x = _to_mono(wav)
    # 48 ms resolves the harmonics of a 65 Hz note (a shorter window beats with its phase and
    # fires false onsets inside notes); a mild log gain keeps faint bins from adding such noise.
    # Chosen on 120 clean clips: no missed onset, median timing error ~3 ms (see tests).
    n_fft = 768
    frames = _frames(x, n_fft, HOP) * np.hanning(n_fft)[None, :]
    mag = np.abs(np.fft.rfft(frames, axis=1))
    logmag = np.log1p(3.0 * mag / (mag.max() + 1e-12))
    lag = 2  # compare with 10 ms earlier: robust to a one-frame wobble, still sharp in time
    flux = np.zeros(len(logmag))
    flux[lag:] = np.maximum(logmag[lag:] - logmag[:-lag], 0.0).sum(1)
    return flux / (flux.max() + 1e-12)


def onset_times(wav: np.ndarray, sr: int = SAMPLE_RATE, min_gap: float = 0.06, delta: float = 0.1) -> np.ndarray:
    """Onset times (s) by peak-picking the spectral flux: local maxima above a moving average + delta."""
    flux = onset_strength(wav)
    w = max(1, round(min_gap * sr / HOP))
    padded = np.pad(flux, (w, w), constant_values=0.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)
    local_max = flux >= windows.max(1)
    avg_w = round(0.1 * sr / HOP)
    avg = np.convolve(flux, np.ones(2 * avg_w + 1) / (2 * avg_w + 1), mode="same")
    peaks = np.flatnonzero(local_max & (flux > avg + delta))
    kept: list[int] = []
    for p in peaks:  # equal-height neighbours: keep the first
        if not kept or p - kept[-1] >= w:
            kept.append(int(p))
    # Frames are centred, so a peak's frame time is the onset: on 1256 clean onsets the mean error
    # was +0.5 ms (median |error| 3 ms), too small to correct.
    return frame_times(len(flux), HOP, sr)[kept] if kept else np.zeros(0)


def match_onsets(reference: np.ndarray, estimate: np.ndarray, tolerance: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching within ``tolerance`` s: (matched reference indices, signed errors est - ref)."""
    used = np.zeros(len(estimate), dtype=bool)
    idx, errors = [], []
    for i, t in enumerate(reference):
        if len(estimate) == 0:
            break
        dist = np.where(used, np.inf, np.abs(estimate - t))
        j = int(dist.argmin())
        if dist[j] <= tolerance:
            used[j] = True
            idx.append(i)
            errors.append(estimate[j] - t)
    return np.array(idx, dtype=np.int64), np.array(errors, dtype=np.float64)


# -------------------------------------------------------------------------------- spectrum
def spectral_centroid(wav: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Energy-weighted mean frequency (Hz) over the active frames."""
    x = _to_mono(wav)
    n_fft = 1024
    frames = _frames(x, n_fft, HOP) * np.hanning(n_fft)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    total = power.sum()
    return float((power * freqs[None, :]).sum() / total) if total > 0 else float("nan")


def spectral_flatness(wav: np.ndarray) -> float:
    """Median over active frames of geometric/arithmetic mean of the power spectrum (1 = white noise)."""
    x = _to_mono(wav)
    n_fft = 1024
    frames = _frames(x, n_fft, HOP) * np.hanning(n_fft)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    flat = np.exp(np.log(power).mean(1)) / power.mean(1)
    active = _active(x)[: len(flat)]
    return float(np.median(flat[active])) if active.any() else float("nan")


def harmonic_profile(wav: np.ndarray, f0: np.ndarray, sr: int = SAMPLE_RATE, max_harmonics: int = 10) -> np.ndarray:
    """Median level (dB re h1, floor -60) of harmonics 1..max_harmonics over voiced frames; NaN above 7 kHz."""
    x = _to_mono(wav)
    n_fft = 2048  # 128 ms: resolves the harmonics of a 65 Hz note
    voiced = np.flatnonzero(~np.isnan(f0))
    if len(voiced) == 0:
        return np.full(max_harmonics, np.nan)
    voiced = voiced[:: max(1, len(voiced) // 80)]  # 80 frames are plenty for a median
    # The same harmonics for every frame (up to 7 kHz for the highest note), so that the notes of
    # an arpeggio are compared like for like.
    count = int(min(max_harmonics, max(1, 7000.0 // np.percentile(f0[voiced], 95))))
    frames = _frames(x, n_fft, HOP)[voiced] * np.hanning(n_fft)[None, :]
    mag = np.abs(np.fft.rfft(frames, 4 * n_fft, axis=1))
    bin_hz = sr / (4 * n_fft)
    levels = np.full((len(voiced), count), np.nan)
    for row, (frame_f0, spectrum) in enumerate(zip(f0[voiced], mag)):
        for n in range(1, count + 1):
            centre = n * frame_f0
            lo, hi = int((centre * 0.97) / bin_hz), int(np.ceil((centre * 1.03) / bin_hz)) + 1
            levels[row, n - 1] = spectrum[lo:min(hi, len(spectrum))].max() if lo < len(spectrum) else 0.0
    # A floor at -60 dB: an absent harmonic is "absent", however deep its leakage happens to be.
    db = np.maximum(20 * np.log10(levels / (levels[:, :1] + 1e-12) + 1e-12), -60.0)
    return np.concatenate([np.median(db, axis=0), np.full(max_harmonics - count, np.nan)])


def waveform_from_profile(profile: np.ndarray) -> str:
    """Tonal waveform family from a harmonic profile (dB re h1): sine, square, saw or pluck."""
    levels = profile[1:][~np.isnan(profile[1:])]  # harmonics 2..N
    if len(levels) == 0 or levels.max() < -30.0:
        return "sine"  # nothing but the fundamental
    n = np.arange(2, len(profile) + 1)[~np.isnan(profile[1:])]
    even = levels[n % 2 == 0]
    odd = levels[n % 2 == 1]
    if len(odd) and len(even) and even.mean() < odd.mean() - 15.0:
        return "square"  # odd harmonics only
    # Saw partials fall at 1/n (slope -1 in log-log), a plucked string's at ~1/n^2 and faster.
    slope = np.polyfit(np.log(n), levels / 20.0 * np.log(10), 1)[0] if len(n) > 1 else levels[0] / 20 / np.log10(2)
    return "saw" if slope > -1.5 else "pluck"


# -------------------------------------------------------------------------------- attributes
@dataclass
class Analysis:
    """Everything measured on one clip, and the attributes read from it."""

    f0: np.ndarray  # [N] Hz, NaN where unvoiced
    onsets: np.ndarray  # [O] seconds
    median_f0: float
    voiced_fraction: float
    aperiodicity: float
    flatness: float
    centroid: float
    median_ioi: float
    profile: np.ndarray  # [10] dB re h1
    attributes: Attributes = field(init=False)

    def __post_init__(self) -> None:
        self.attributes = self._classify()

    @property
    def tonal(self) -> bool:
        """Whether the clip is pitched (its energy is mostly periodic)."""
        return self.aperiodicity < TONAL_APERIODICITY

    def _classify(self) -> Attributes:
        if not self.tonal:
            lo, hi = REGISTER_CENTROID_HZ
            register = "low" if self.centroid < lo else "high" if self.centroid > hi else "mid"
            tempo = "fast" if self.median_ioi < FAST_IOI_S else "slow"
            return Attributes("drums", register, tempo, "beat")
        lo, hi = REGISTER_F0_HZ
        register = "low" if self.median_f0 < lo else "high" if self.median_f0 > hi else "mid"
        waveform = waveform_from_profile(self.profile)
        if len(self.onsets) <= 2:
            return Attributes(waveform, register, None, "sustained")
        tempo = "fast" if self.median_ioi < FAST_IOI_S else "slow"
        return Attributes(waveform, register, tempo, "arpeggio")


def analyse(wav: np.ndarray, sr: int = SAMPLE_RATE) -> Analysis:
    """Measure a mono (or [C, S]) clip and read its attributes; other rates are resampled to 16 kHz."""
    x = _to_mono(wav)
    if sr != SAMPLE_RATE:
        import soxr

        x = soxr.resample(x, sr, SAMPLE_RATE)
    f0, aper = f0_track(x)
    active = _active(x)[: len(f0)]
    energy = (_frames(x, YIN_WINDOW, HOP) ** 2).mean(1)[: len(aper)]
    voiced = ~np.isnan(f0)
    onsets = onset_times(x)
    ioi = float(np.median(np.diff(onsets))) if len(onsets) > 1 else float("inf")
    return Analysis(
        f0=f0,
        onsets=onsets,
        median_f0=float(np.median(f0[voiced])) if voiced.any() else float("nan"),
        voiced_fraction=float(voiced[active].mean()) if active.any() else 0.0,
        aperiodicity=float((np.minimum(aper, 1.0) * energy).sum() / (energy.sum() + 1e-20)),
        flatness=spectral_flatness(x),
        centroid=spectral_centroid(x),
        median_ioi=ioi,
        profile=harmonic_profile(x, f0),
    )


def attribute_accuracy(n_clips: int = 200, seed: int = 1234, split: str = "train") -> dict[str, float]:
    """Share of clean dataset clips whose analysed attribute equals the true one, per attribute and all four."""
    from magnetkit_synth.dataset import iter_clips

    names = ("waveform", "register", "tempo", "pattern")
    hits = {name: 0 for name in names}
    exact = 0
    for clip in iter_clips(n_clips, seed, split):
        got = analyse(clip.audio).attributes
        for name in names:
            hits[name] += getattr(got, name) == getattr(clip.attributes, name)
        exact += got == clip.attributes
    result = {name: hits[name] / n_clips for name in names}
    result["all"] = exact / n_clips
    return result


def main(argv: list[str] | None = None) -> int:
    """Print the analysis accuracy per attribute on clean clips."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--split", default="train")
    args = parser.parse_args(argv)
    for name, value in attribute_accuracy(args.clips, args.seed, args.split).items():
        print(f"{name:9s} {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
