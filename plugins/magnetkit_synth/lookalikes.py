"""Adversarial clips that look like a pattern to a naive judge but are not: the judge must reject them.

Each maker takes a generator and returns mono float32 audio at `SAMPLE_RATE`; each kind has a
check that says whether the judge's reading of it is right (`LOOKALIKES`). The kinds follow
issue 19: a drone with clicks, a drone with amplitude wobble, a drone with short pitch glitches,
a two-note trill, noise bursts at random times, and a clip that falls silent half way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from magnetkit_synth.analysis import Analysis
from magnetkit_synth.dataset import REGISTER_MIDI, REGISTERS, SAMPLE_RATE, TONAL, _drum_hit, _tone, make_clip


def _drone(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, int, str]:
    """A sustained tonal note of a random waveform (no pluck: it fades) and register; (audio, MIDI pitch, waveform)."""
    waveform = str(rng.choice([w for w in TONAL if w != "pluck"]))
    low, high = REGISTER_MIDI[str(rng.choice(REGISTERS))]
    pitch = int(rng.integers(low, high + 1))
    return _tone(waveform, pitch, round(seconds * SAMPLE_RATE), rng), pitch, waveform


def _normalise(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (wav / (np.abs(wav).max() + 1e-9) * rng.uniform(0.4, 0.9)).astype(np.float32)


def drone_with_clicks(rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """One held note with loud broadband clicks on a regular grid (what a flickering codec adds)."""
    wav, _, _ = _drone(rng, seconds)
    wav = wav / np.abs(wav).max()
    step = rng.uniform(0.13, 0.45)
    for t in np.arange(rng.uniform(0.05, 0.2), seconds - 0.05, step):
        start = round(t * SAMPLE_RATE)
        click = rng.standard_normal(80) * np.exp(-np.arange(80) / 15.0)
        wav[start:start + 80] += rng.uniform(0.5, 1.0) * click[: len(wav) - start]
    return _normalise(wav, rng)


def drone_with_wobble(rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """One held note whose level dips by 20-35 dB 3-7 times a second (tremolo)."""
    wav, _, _ = _drone(rng, seconds)
    t = np.arange(len(wav)) / SAMPLE_RATE
    depth = 1.0 - 10 ** (-rng.uniform(20, 35) / 20)
    gain = 1.0 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 7) * t + rng.uniform(0, 2 * np.pi)))
    return _normalise(wav * gain, rng)


def drone_with_glitches(rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """One held note with 20 ms jumps to other pitches at regular times (a sustained note with glitches)."""
    wav, pitch, waveform = _drone(rng, seconds)
    step = rng.uniform(0.15, 0.45)
    for t in np.arange(rng.uniform(0.1, 0.3), seconds - 0.1, step):
        start, length = round(t * SAMPLE_RATE), round(0.02 * SAMPLE_RATE)
        other = _tone(waveform, pitch + int(rng.choice([-7, -4, 3, 4, 7, 12])), length, rng)
        wav[start:start + length] = other * np.abs(wav).max() / (np.abs(other).max() + 1e-9)
    return _normalise(wav, rng)


def two_note_trill(rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """Two notes alternating at an arpeggio's rate: pitch changes, but not three distinct notes."""
    waveform = str(rng.choice(TONAL))
    low, high = REGISTER_MIDI[str(rng.choice(REGISTERS))]
    root = int(rng.integers(low, high - 4 + 1))
    step = rng.uniform(0.13, 0.45)
    wav = np.zeros(round(seconds * SAMPLE_RATE))
    for i, t in enumerate(np.arange(0.0, seconds - 0.05, step)):
        start = round(t * SAMPLE_RATE)
        tone = _tone(waveform, root + (4 if i % 2 else 0), min(round((step - 0.03) * SAMPLE_RATE), len(wav) - start), rng)
        wav[start:start + len(tone)] += tone
    return _normalise(wav, rng)


def noise_bursts(rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """Noise-drum hits at uniformly random times: aperiodic onsets with no regular rhythm."""
    register = str(rng.choice(REGISTERS))
    wav = np.zeros(round(seconds * SAMPLE_RATE))
    count = int(rng.integers(7, 14))
    for t in np.sort(rng.uniform(0.0, seconds - 0.1, count)):
        start = round(t * SAMPLE_RATE)
        voice = str(rng.choice(["kick", "snare", "hat"]))
        hit = _drum_hit(voice, register, min(len(wav) - start, round(0.3 * SAMPLE_RATE)), rng)
        wav[start:start + len(hit)] += hit * rng.uniform(0.6, 1.0)
    return _normalise(wav, rng)


def silent_tail(rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """A real clip of any combination that stops playing after 35-65% of its length."""
    clip = make_clip(int(rng.integers(1 << 30)), "train", 0)
    wav = np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)
    keep = round(rng.uniform(0.35, 0.65) * seconds * SAMPLE_RATE)
    wav[:keep] = clip.audio[:keep]
    return wav


@dataclass(frozen=True)
class Lookalike:
    """An adversarial kind: its maker, what it must be judged as, that rule as a check, and the pattern it imitates."""

    make: Callable[[np.random.Generator], np.ndarray]
    expected: str
    check: Callable[[Analysis], bool]
    lure: str | None  # the pattern a naive judge would read (None: not a pattern look-alike)


def _pattern_is(pattern: str) -> Callable[[Analysis], bool]:
    return lambda result: result.attributes.pattern == pattern


LOOKALIKES: dict[str, Lookalike] = {
    "drone with clicks": Lookalike(drone_with_clicks, "sustained", _pattern_is("sustained"), "arpeggio"),
    "drone with amplitude wobble": Lookalike(drone_with_wobble, "sustained", _pattern_is("sustained"), "arpeggio"),
    "drone with pitch glitches": Lookalike(drone_with_glitches, "sustained", _pattern_is("sustained"), "arpeggio"),
    "two-note trill": Lookalike(two_note_trill, "not an arpeggio",
                                lambda result: result.attributes.pattern != "arpeggio", "arpeggio"),
    "noise bursts at random times": Lookalike(noise_bursts, "not a beat",
                                              lambda result: result.attributes.pattern != "beat", "beat"),
    "silent tail": Lookalike(silent_tail, "not full length", lambda result: not result.full_length, None),
}


def legacy_pattern(result: Analysis) -> str:
    """The pattern the judge before issue 19 read: three or more spectral onsets made an arpeggio, any noise a beat."""
    if not result.tonal:
        return "beat"
    return "sustained" if len(result.onsets) <= 2 else "arpeggio"



def lookalike_accuracy(per_kind: int = 20, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per kind: share of ``per_kind`` clips the judge reads right, and the share the judge before issue 19 did.

    Raises:
        ValueError: a non-positive count.
    """
    from magnetkit_synth.analysis import analyse

    if per_kind <= 0:
        raise ValueError(f"per_kind must be positive, got {per_kind}")
    out = {}
    for k, (name, kind) in enumerate(LOOKALIKES.items()):
        right = legacy = 0
        for i in range(per_kind):
            result = analyse(kind.make(np.random.default_rng([seed, k, i])))
            right += kind.check(result)
            # the previous judge had no notion of a clip that stops playing: it never caught a silent tail
            legacy += kind.lure is not None and legacy_pattern(result) != kind.lure
        out[name] = {"judge": right / per_kind, "previous judge": legacy / per_kind}
    return out

