"""How faithfully a codec keeps pitch, onsets and the judged attributes of synthetic clips.

Works with any `Codec` (the clips are resampled to its rate and channel count and back), so the
shipped speccodec and, say, EnCodec can be compared on the same held-out clips.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from magnetkit import Codec, UsageError
from magnetkit_synth.analysis import HOP, analyse, match_onsets
from magnetkit_synth.dataset import REGISTERS, SAMPLE_RATE, Clip, midi_to_hz

ATTRIBUTE_NAMES = ("waveform", "register", "tempo", "pattern")


@dataclass
class ClipFidelity:
    """Measurements of one clip against its codec round trip."""

    register: str
    tonal: bool
    note_f0_errors: list[float]  # per note: |decoded median f0 / true frequency - 1| (1.0 if unpitched)
    f0_frames_within: float  # share of the original's voiced frames whose decoded f0 is within tolerance
    onset_errors_ms: list[float]  # |decoded - original| for matched onsets (within 50 ms)
    onsets: int  # onsets detected on the original
    onsets_within: int  # of those, matched within the onset tolerance
    extra_onsets: int  # decoded onsets matching none of the original's
    truth_onsets: int
    truth_within: int  # generator onsets with a decoded onset within the tolerance
    codec_seconds: float  # encode + decode compute time
    attributes_kept: dict[str, bool] = field(default_factory=dict)


@dataclass
class FidelityReport:
    """Summary over clips (shares in [0, 1], times in ms)."""

    clips: int
    f0_tolerance: float
    onset_tolerance_ms: float
    note_pitch_within: float  # notes whose decoded f0 is within tolerance of the true pitch
    pitch_clips_kept: float  # tonal clips with at least 90% of their notes within tolerance
    pitch_clips_kept_by_register: dict[str, float]
    f0_frames_within: float  # mean over tonal clips
    median_note_f0_error: float
    onset_recall: float  # original's onsets found again within the tolerance
    truth_onset_recall: float  # generator's onsets found in the decoded audio within the tolerance
    onset_median_ms: float
    onset_p95_ms: float
    extra_onsets_per_clip: float
    attributes_kept: float  # clips whose four judged attributes all match the truth after the round trip
    attribute_kept: dict[str, float]
    realtime_factor: float  # seconds of audio encoded and decoded per second of compute

    def as_dict(self) -> dict:
        """The report as plain JSON-able values."""
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable summary, one measurement per line."""
        regs = ", ".join(f"{k} {v:.0%}" for k, v in self.pitch_clips_kept_by_register.items())
        attrs = ", ".join(f"{k} {v:.0%}" for k, v in self.attribute_kept.items())
        return [
            f"clips: {self.clips}",
            (f"pitch: {self.note_pitch_within:.1%} of notes within {self.f0_tolerance:.0%} of the true f0 "
             f"(median error {self.median_note_f0_error:.2%}); {self.pitch_clips_kept:.1%} of tonal clips keep "
             f">= 90% of their notes ({regs}); {self.f0_frames_within:.1%} of voiced frames within"),
            (f"onsets: {self.onset_recall:.1%} found again within {self.onset_tolerance_ms:.0f} ms "
             f"(vs generator truth {self.truth_onset_recall:.1%}); |error| median {self.onset_median_ms:.1f} ms, "
             f"p95 {self.onset_p95_ms:.1f} ms; {self.extra_onsets_per_clip:.2f} extra onsets per clip"),
            f"judged attributes kept: {self.attributes_kept:.1%} all four ({attrs})",
            f"speed: {self.realtime_factor:.1f}x real time (encode + decode)",
        ]


def round_trip(codec: Codec, audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Clip at 16 kHz mono -> codec -> back to 16 kHz mono, same length; and the codec's compute seconds."""
    import soxr

    # soxr directly (the core's `magnetkit.audio.resample` wraps the same call) keeps this plugin
    # on magnetkit's public API.
    if codec.sample_rate != SAMPLE_RATE:
        audio_in = soxr.resample(audio.astype(np.float32), SAMPLE_RATE, codec.sample_rate, quality="HQ")
    else:
        audio_in = audio.astype(np.float32)
    wav = torch.from_numpy(np.ascontiguousarray(audio_in)).view(1, 1, -1).expand(1, codec.channels, -1)
    start = time.perf_counter()
    out = codec.decode(codec.encode(wav))
    spent = time.perf_counter() - start
    out = out.float().mean(1)[0].cpu().numpy()
    if codec.sample_rate != SAMPLE_RATE:
        out = soxr.resample(out, codec.sample_rate, SAMPLE_RATE, quality="HQ")
    out = out.astype(np.float64)[: len(audio)]
    return np.pad(out, (0, len(audio) - len(out))), spent


def _note_f0_errors(clip: Clip, f0: np.ndarray, margin: float = 0.03) -> list[float]:
    """Per pitched note: relative error of the median f0 over the note (its first and last 30 ms left out)."""
    errors = []
    notes = [n for n in clip.notes if n.pitch is not None]
    for i, note in enumerate(notes):
        end = notes[i + 1].onset if i + 1 < len(notes) else clip.duration
        lo, hi = int((note.onset + margin) * SAMPLE_RATE / HOP), int((end - margin) * SAMPLE_RATE / HOP)
        voiced = f0[lo:max(lo + 1, hi)]
        voiced = voiced[~np.isnan(voiced)]
        errors.append(abs(float(np.median(voiced)) / midi_to_hz(note.pitch) - 1.0) if len(voiced) else 1.0)
    return errors


def clip_fidelity(codec: Codec, clip: Clip, f0_tolerance: float = 0.03, onset_tolerance: float = 0.02) -> ClipFidelity:
    """Measure one clip's round trip through ``codec``."""
    decoded, spent = round_trip(codec, clip.audio)
    original = analyse(clip.audio)
    rebuilt = analyse(decoded)
    note_errors, frames_within = [], float("nan")
    if original.tonal:
        note_errors = _note_f0_errors(clip, rebuilt.f0)
        n = min(len(original.f0), len(rebuilt.f0))
        ref, est = original.f0[:n], rebuilt.f0[:n]
        voiced = ~np.isnan(ref)
        with np.errstate(invalid="ignore"):
            close = np.abs(est[voiced] / ref[voiced] - 1.0) <= f0_tolerance  # unvoiced decoded frames count as misses
        frames_within = float(close.mean()) if voiced.any() else float("nan")
    _, errors = match_onsets(original.onsets, rebuilt.onsets, tolerance=0.05)
    truth = np.array([note.onset for note in clip.notes])
    _, truth_errors = match_onsets(truth, rebuilt.onsets, tolerance=onset_tolerance)
    kept = {name: getattr(rebuilt.attributes, name) == getattr(clip.attributes, name) for name in ATTRIBUTE_NAMES}
    return ClipFidelity(
        register=clip.attributes.register, tonal=original.tonal, note_f0_errors=note_errors,
        f0_frames_within=frames_within,
        onset_errors_ms=list(np.abs(errors) * 1000), onsets=len(original.onsets),
        onsets_within=int((np.abs(errors) <= onset_tolerance + 1e-9).sum()),
        extra_onsets=len(rebuilt.onsets) - len(errors), truth_onsets=len(truth), truth_within=len(truth_errors),
        codec_seconds=spent, attributes_kept=kept,
    )


def codec_fidelity(codec: Codec, clips: Iterable[Clip], f0_tolerance: float = 0.03,
                   onset_tolerance: float = 0.02) -> FidelityReport:
    """Pitch, onset and attribute fidelity of ``codec`` over ``clips`` (e.g. the held-out split).

    Args:
        codec: any codec; clips are resampled to its rate and channel count.
        clips: synthetic clips with their ground truth (`magnetkit_synth.iter_clips`).
        f0_tolerance: relative f0 error that still counts as the same pitch.
        onset_tolerance: seconds within which a decoded onset counts as the same onset.

    Returns:
        The summary report.

    Raises:
        UsageError: no clips.
    """
    results, seconds = [], 0.0
    for clip in clips:
        results.append(clip_fidelity(codec, clip, f0_tolerance, onset_tolerance))
        seconds += clip.duration
    if not results:
        raise UsageError("codec_fidelity needs at least one clip")
    compute = sum(r.codec_seconds for r in results)
    tonal = [r for r in results if r.tonal and r.note_f0_errors]
    errors = np.concatenate([r.onset_errors_ms for r in results] + [np.zeros(0)])
    note_errors = np.concatenate([r.note_f0_errors for r in tonal] + [np.zeros(0)])

    def kept(r: ClipFidelity) -> bool:
        return float(np.mean(np.asarray(r.note_f0_errors) <= f0_tolerance)) >= 0.9

    by_register = {reg: float(np.mean([kept(r) for r in tonal if r.register == reg]))
                   for reg in REGISTERS if any(r.register == reg for r in tonal)}
    return FidelityReport(
        clips=len(results), f0_tolerance=f0_tolerance, onset_tolerance_ms=onset_tolerance * 1000,
        note_pitch_within=float(np.mean(note_errors <= f0_tolerance)) if len(note_errors) else float("nan"),
        pitch_clips_kept=float(np.mean([kept(r) for r in tonal])) if tonal else float("nan"),
        pitch_clips_kept_by_register=by_register,
        f0_frames_within=float(np.mean([r.f0_frames_within for r in tonal])) if tonal else float("nan"),
        median_note_f0_error=float(np.median(note_errors)) if len(note_errors) else float("nan"),
        onset_recall=sum(r.onsets_within for r in results) / max(1, sum(r.onsets for r in results)),
        truth_onset_recall=sum(r.truth_within for r in results) / max(1, sum(r.truth_onsets for r in results)),
        onset_median_ms=float(np.median(errors)) if len(errors) else float("nan"),
        onset_p95_ms=float(np.percentile(errors, 95)) if len(errors) else float("nan"),
        extra_onsets_per_clip=float(np.mean([r.extra_onsets for r in results])),
        attributes_kept=float(np.mean([all(r.attributes_kept.values()) for r in results])),
        attribute_kept={name: float(np.mean([r.attributes_kept[name] for r in results])) for name in ATTRIBUTE_NAMES},
        realtime_factor=seconds / compute if compute > 0 else float("inf"),
    )
