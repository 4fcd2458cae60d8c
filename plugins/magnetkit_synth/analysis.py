"""Signal-processing measurements of a clip: f0, onsets, tonality, spectrum shape -> attributes.

These are the judge of codec fidelity and of prompt adherence, so they are plain numpy, fixed
(nothing learned), and their accuracy on clean dataset clips is measured by `attribute_accuracy`
(`python -m magnetkit_synth.analysis` prints it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
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

# Notes and rhythm (the generator's definitions, dataset.py): an arpeggio cycles a triad, so it
# changes pitch (by 3 semitones or more) at every onset and holds three distinct notes; a beat hits
# on every step of a regular grid; a sustained note is one pitch for the whole clip.
NOTE_JUMP_SEMITONES = 0.5  # a frame-to-frame f0 jump above this starts a new note
MIN_NOTE_S = 0.04  # shorter pitched runs are glitches, not notes (the shortest real note is ~95 ms)
DISTINCT_NOTE_SEMITONES = 1.5  # pitches closer than this are one note (triad steps are >= 3)
ARPEGGIO_NOTES = 3  # distinct notes an arpeggio needs
SUSTAINED_SHARE = 0.7  # one pitch holding this share of the pitched time is a sustained note
MINOR_NOTE_SHARE = 0.08  # a distinct note must hold this share of the pitched time to count
RHYTHM_TOLERANCE = 0.15  # an inter-onset interval within this fraction of a whole number of steps fits the grid
RHYTHM_FIT_SHARE = 0.8  # share of intervals that must fit the grid for a beat
# Longest silence (s) a clip of each judged pattern may hold, beyond its note interval, before it
# counts as "stopped playing" (real clips: the last note's gap to the end, a drum hit's decay).
# (note intervals, seconds): a beat's last hit may come up to two steps before the end, less its decay.
SILENCE_ALLOWED = {"sustained": (0.0, 0.3), "arpeggio": (1.0, 0.25), "beat": (2.0, 0.25)}
OTHER_SILENCE_ALLOWED = (0.0, 0.5)
PLUCK_RING_S = 1.0  # a plucked sustained note may fade to silence after ringing this long


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


# ------------------------------------------------------------------------------------- notes
@dataclass(frozen=True)
class NoteSegment:
    """A run of voiced frames holding one pitch: start and end (s) and median pitch (MIDI, fractional)."""

    start: float
    end: float
    pitch: float


def note_segments(f0: np.ndarray, hop: int = HOP, sr: int = SAMPLE_RATE) -> list[NoteSegment]:
    """Split an f0 track into notes: a new note where voicing stops or the pitch jumps; short runs dropped.

    Consecutive notes of the same pitch (a dip in level, a click) are merged, so every returned
    note after the first starts with a real pitch change.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        midi = 69.0 + 12.0 * np.log2(f0 / 440.0)
    voiced = ~np.isnan(midi)
    jump = np.zeros(len(midi), dtype=bool)
    jump[1:] = ~voiced[1:] | ~voiced[:-1] | (np.abs(np.diff(np.where(voiced, midi, 0.0))) > NOTE_JUMP_SEMITONES)
    runs: list[NoteSegment] = []
    start = None
    for i in range(len(midi) + 1):
        if i < len(midi) and voiced[i] and start is not None and not jump[i]:
            continue
        if start is not None and (i - start) * hop / sr >= MIN_NOTE_S:
            runs.append(NoteSegment(start * hop / sr, i * hop / sr, float(np.median(midi[start:i]))))
        start = i if i < len(midi) and voiced[i] else None
    merged: list[NoteSegment] = []
    for run in runs:
        if merged and abs(run.pitch - merged[-1].pitch) < DISTINCT_NOTE_SEMITONES:
            last = merged[-1]
            merged[-1] = NoteSegment(last.start, run.end, last.pitch)
        else:
            merged.append(run)
    return merged


def pitch_classes(notes: list[NoteSegment]) -> list[float]:
    """Share of the voiced note time each distinct pitch holds (pitches closer than `DISTINCT_NOTE_SEMITONES` are one), largest first."""
    if not notes:
        return []
    order = sorted(notes, key=lambda n: n.pitch)
    groups: list[list[NoteSegment]] = [[order[0]]]
    for note in order[1:]:
        if note.pitch - groups[-1][-1].pitch < DISTINCT_NOTE_SEMITONES:
            groups[-1].append(note)
        else:
            groups.append([note])
    total = sum(n.end - n.start for n in notes)
    return sorted((sum(n.end - n.start for n in g) / total for g in groups), reverse=True)


def regular_period(onsets: np.ndarray) -> float | None:
    """The step (s) of a regular rhythm the onsets follow, or None when they follow none.

    Regular means: almost every inter-onset interval is a whole number (1-4) of one step, within
    `RHYTHM_TOLERANCE` of a step; missed quiet hits (an interval of two steps) are allowed.
    """
    if len(onsets) < 3:
        return None
    ioi = np.diff(np.sort(onsets))
    low = np.percentile(ioi, 20)
    base = float(np.median(ioi[ioi <= 1.3 * low]))
    if base <= 0:
        return None
    steps = np.maximum(np.round(ioi / base), 1.0)
    fits = (np.abs(ioi - steps * base) <= RHYTHM_TOLERANCE * base) & (steps <= 4)
    if fits.mean() < RHYTHM_FIT_SHARE:
        return None
    return float(ioi[fits].sum() / steps[fits].sum())


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


# -------------------------------------------------------------------------------- silence
def silences(wav: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[float, float, float]:
    """(time of the last active frame, longest silence after the first active frame, trailing silence), in s.

    Active means louder than `ACTIVE_DB` below the loudest frame; a silent clip gives (0, length, length).
    """
    x = _to_mono(wav)
    active = _active(x)
    length = len(x) / sr
    if not active.any():
        return 0.0, length, length
    idx = np.flatnonzero(active)
    step = HOP / sr
    tail = max(0.0, length - idx[-1] * step)
    inner = float((np.diff(idx) - 1).max() * step) if len(idx) > 1 else 0.0
    return float(idx[-1] * step), max(inner, tail), tail


# -------------------------------------------------------------------------------- attributes
# Judged values outside the generator's: "other" (a pattern it never plays: two notes, notes with no
# regular rhythm, noise without a beat) and "silence" (nothing audible).
OTHER, SILENCE = "other", "silence"


@dataclass
class Analysis:
    """Everything measured on one clip, and the attributes read from it."""

    f0: np.ndarray  # [N] Hz, NaN where unvoiced
    onsets: np.ndarray  # [O] seconds (spectral flux)
    median_f0: float
    voiced_fraction: float
    aperiodicity: float
    flatness: float
    centroid: float
    profile: np.ndarray  # [10] dB re h1
    notes: list[NoteSegment]  # pitched notes, each after the first a real pitch change
    beat_period: float | None  # the step of the regular rhythm the onsets follow, if any
    last_sound: float  # s: time of the last audible frame
    longest_silence: float  # s: longest silence after the first sound, the tail included
    silent_tail: float  # s: silence at the end
    audible: bool = True  # False: no frame rises above the silence floor
    attributes: Attributes = field(init=False)
    median_ioi: float = field(init=False)  # s: the interval the tempo is read from (note changes or beat steps)

    def __post_init__(self) -> None:
        self.median_ioi = self._interval()
        self.attributes = self._classify()

    @property
    def tonal(self) -> bool:
        """Whether the clip is pitched (its energy is mostly periodic)."""
        return self.aperiodicity < TONAL_APERIODICITY

    @property
    def note_shares(self) -> list[float]:
        """Share of the pitched time each distinct note holds, largest first."""
        return pitch_classes(self.notes)

    @property
    def full_length(self) -> bool:
        """Whether the clip keeps playing to its end: no silence longer than its judged pattern allows.

        A sustained plucked note fades by nature; it only has to ring for `PLUCK_RING_S`.
        """
        attrs = self.attributes
        if attrs.pattern == SILENCE:
            return False
        if attrs.pattern == "sustained" and attrs.waveform == "pluck":
            return self.last_sound >= PLUCK_RING_S and self.longest_silence <= self.silent_tail + 1e-9
        steps, seconds = SILENCE_ALLOWED.get(attrs.pattern, OTHER_SILENCE_ALLOWED)
        interval = self.median_ioi if np.isfinite(self.median_ioi) else 0.0
        return self.longest_silence <= steps * interval + seconds

    def _interval(self) -> float:
        if not self.tonal:
            return self.beat_period if self.beat_period is not None else float("inf")
        starts = np.array([note.start for note in self.notes])
        return float(np.median(np.diff(starts))) if len(starts) > 1 else float("inf")

    def _classify(self) -> Attributes:
        if not self.audible:
            return Attributes(SILENCE, SILENCE, None, SILENCE)
        if not self.tonal:
            lo, hi = REGISTER_CENTROID_HZ
            register = "low" if self.centroid < lo else "high" if self.centroid > hi else "mid"
            if self.beat_period is None:  # noise without a regular rhythm is not a beat
                return Attributes("drums", register, None, OTHER)
            return Attributes("drums", register, "fast" if self.beat_period < FAST_IOI_S else "slow", "beat")
        lo, hi = REGISTER_F0_HZ
        register = "low" if self.median_f0 < lo else "high" if self.median_f0 > hi else "mid"
        waveform = waveform_from_profile(self.profile)
        shares = self.note_shares
        if shares and shares[0] >= SUSTAINED_SHARE:
            return Attributes(waveform, register, None, "sustained")  # one pitch, whatever glitches or clicks
        distinct = sum(share >= MINOR_NOTE_SHARE for share in shares)
        if distinct >= ARPEGGIO_NOTES and len(self.notes) >= ARPEGGIO_NOTES:
            return Attributes(waveform, register, "fast" if self.median_ioi < FAST_IOI_S else "slow", "arpeggio")
        return Attributes(waveform, register, None, OTHER)


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
    last_sound, longest, tail = silences(x)
    return Analysis(
        f0=f0,
        onsets=onsets,
        median_f0=float(np.median(f0[voiced])) if voiced.any() else float("nan"),
        voiced_fraction=float(voiced[active].mean()) if active.any() else 0.0,
        aperiodicity=float((np.minimum(aper, 1.0) * energy).sum() / (energy.sum() + 1e-20)),
        flatness=spectral_flatness(x),
        centroid=spectral_centroid(x),
        profile=harmonic_profile(x, f0),
        notes=note_segments(f0),
        beat_period=regular_period(onsets),
        last_sound=last_sound,
        longest_silence=longest,
        silent_tail=tail,
        audible=bool(np.abs(x).max() > 1e-6),
    )


def attribute_accuracy(n_clips: int = 200, seed: int = 1234, split: str = "train",
                       transform: Callable[[np.ndarray], np.ndarray] | None = None,
                       timing: str = "free", arpeggio: str = "varied", kit: str = "varied") -> dict[str, float]:
    """Share of dataset clips whose judged attribute equals the true one, per attribute, all four, and full length.

    Args:
        n_clips, seed, split, timing, arpeggio, kit: which clips of the dataset (`magnetkit_synth.dataset.iter_clips`).
        transform: applied to each clip's audio before judging (e.g. a codec round trip).
    """
    from magnetkit_synth.dataset import iter_clips

    names = ("waveform", "register", "tempo", "pattern")
    hits = {name: 0 for name in names}
    exact = full = 0
    for clip in iter_clips(n_clips, seed, split, timing, arpeggio, kit):
        result = analyse(transform(clip.audio) if transform else clip.audio)
        got = result.attributes
        for name in names:
            hits[name] += getattr(got, name) == getattr(clip.attributes, name)
        exact += got == clip.attributes
        full += result.full_length
    accuracy = {name: hits[name] / n_clips for name in names}
    accuracy["all"] = exact / n_clips
    accuracy["full length"] = full / n_clips
    return accuracy


def main(argv: list[str] | None = None) -> int:
    """Print the analysis accuracy per attribute on clean clips."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--split", default="train")
    args = parser.parse_args(argv)
    for name, value in attribute_accuracy(args.clips, args.seed, args.split).items():
        print(f"{name.replace(' ', '-'):11s} {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
