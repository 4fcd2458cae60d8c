"""A procedural dataset of short synthesised music-like clips with captions from controlled attributes.

Every clip is drawn from four attributes — waveform family, pitch register, tempo and pattern —
so a generated clip's adherence to its caption can later be measured with signal processing
(`magnetkit_synth.analysis`). A fixed list of attribute combinations (`HELDOUT`) never appears in
the training split, to measure compositional generalisation.

Determinism: clip ``i`` of ``(seed, split)`` is rendered from its own generator seeded with
``[seed, split_id, i]``, so it does not depend on how many clips are written.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from magnetkit import UsageError

SAMPLE_RATE = 16000
WAVEFORMS = ("sine", "square", "saw", "pluck", "drums")
TONAL = ("sine", "square", "saw", "pluck")
REGISTERS = ("low", "mid", "high")
TEMPOS = ("slow", "fast")
PATTERNS = ("sustained", "arpeggio", "beat")
SPLITS = {"train": 0, "valid": 1, "heldout": 2}

# MIDI note ranges per register; the gaps between them (7 semitones) keep the register of a clip
# unambiguous from its f0 even after a lossy codec.
REGISTER_MIDI = {"low": (36, 47), "mid": (55, 66), "high": (74, 85)}
# Seconds between note (or drum-step) onsets; the gap around 0.25 s separates slow from fast.
TEMPO_INTERVAL = {"slow": (0.33, 0.5), "fast": (0.125, 0.167)}
DURATIONS = (2.0, 2.5, 3.0, 3.5, 4.0)
# Grid timing (`timing="grid"`): one interval per tempo word, a whole number of 20 ms codec frames
# (slow 20, fast 8) inside the ranges above, every clip `GRID_DURATION` long with its first note at
# 0 and notes to its last sample. A crop of the whole clip then has every onset at a frame the
# caption fixes; with free timing the onsets of a 3 s window are spread over +-0.5 s by the
# interval's range and the crop's offset.
GRID_INTERVAL = {"slow": 0.4, "fast": 0.16}
GRID_DURATION = 3.0
TIMINGS = ("free", "grid")
# Arpeggio pitches (`arpeggio=`): "varied" draws a root in the register, a major or minor third and
# one of three shapes (up, down, up-and-back); "ascending" keeps the drawn root but always plays the
# major triad upwards; "fixed" plays one ascending major triad per register (`FIXED_ROOT`), so the
# caption and the frame alone say which note sounds when. The generator draws the same numbers for
# every choice, so the other attributes, levels and captions of a clip do not change.
ARPEGGIOS = ("varied", "ascending", "fixed")
FIXED_ROOT = {register: (low + high - 7) // 2 for register, (low, high) in REGISTER_MIDI.items()}
# Drum sounds (`kit=`): "varied" draws every hit's noise, decay, kick pitch and level, and one of two
# bars; "fixed" plays one recorded hit per voice and register at one level in one bar, so a beat's
# caption and the frame alone say what sounds when (what "fixed" arpeggios do for notes). The
# generator draws the same numbers either way.
KITS = ("varied", "fixed")
# Harmonics are kept below this so no synthesised partial aliases at 16 kHz.
BAND_LIMIT_HZ = 7500.0


@dataclass(frozen=True)
class Attributes:
    """The controlled attributes of one clip; ``tempo`` is None for a single sustained note."""

    waveform: str
    register: str
    tempo: str | None
    pattern: str

    def key(self) -> tuple[str, str, str | None, str]:
        """The attribute combination as a tuple."""
        return (self.waveform, self.register, self.tempo, self.pattern)


def attribute_grid() -> list[Attributes]:
    """Every valid combination (42): tonal x register x {sustained, slow/fast arpeggio}, drums x register x tempo."""
    grid = []
    for register in REGISTERS:
        for waveform in TONAL:
            grid.append(Attributes(waveform, register, None, "sustained"))
            grid.extend(Attributes(waveform, register, tempo, "arpeggio") for tempo in TEMPOS)
        grid.extend(Attributes("drums", register, tempo, "beat") for tempo in TEMPOS)
    return grid


# Never used for training. Each value and each (waveform, register) pair still occurs in training
# under other combinations, so these test composition, not unseen sounds.
HELDOUT: tuple[Attributes, ...] = (
    Attributes("sine", "low", "slow", "arpeggio"),
    Attributes("square", "mid", "fast", "arpeggio"),
    Attributes("saw", "high", "fast", "arpeggio"),
    Attributes("pluck", "high", "slow", "arpeggio"),
    Attributes("square", "low", None, "sustained"),
    Attributes("pluck", "mid", None, "sustained"),
    Attributes("drums", "high", "slow", "beat"),
)


def combinations(split: str) -> list[Attributes]:
    """The attribute combinations a split draws from: held-out ones for "heldout", the rest otherwise."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    heldout = set(HELDOUT)
    if split == "heldout":
        return list(HELDOUT)
    return [a for a in attribute_grid() if a not in heldout]


# ------------------------------------------------------------------------------------ captions
# The first word of each list is the canonical one; all are recognised by `parse_caption`.
WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "waveform": {
        "sine": ("sine wave", "sine tone", "pure sine"),
        "square": ("square wave", "square-wave synth", "square lead"),
        "saw": ("sawtooth", "saw wave", "sawtooth synth"),
        "pluck": ("plucked string", "pluck", "plucked-string"),
        "drums": ("drums", "noise drums", "percussion"),
    },
    "register": {
        "low": ("low", "low-pitched", "deep"),
        "mid": ("mid-range", "mid-pitched", "middle-register"),
        "high": ("high", "high-pitched", "high-register"),
    },
    "tempo": {
        "slow": ("slow", "relaxed", "leisurely"),
        "fast": ("fast", "quick", "rapid"),
    },
    "pattern": {
        "sustained": ("sustained note", "held note", "long tone"),
        "arpeggio": ("arpeggio", "arpeggiated pattern", "broken chord"),
        "beat": ("beat", "rhythm", "groove"),
    },
}

_TEMPLATES = {
    "arpeggio": (
        "a {tempo} {register} {waveform} {pattern}",
        "{tempo} {pattern} played on a {register} {waveform}",
        "a {register} {waveform} playing a {tempo} {pattern}",
    ),
    "sustained": (
        "a {register} {waveform} {pattern}",
        "one {pattern} from a {register} {waveform}",
        "{waveform}, a {register} {pattern}",
    ),
    "beat": (
        "a {tempo} {register} {waveform} {pattern}",
        "{register} {waveform} playing a {tempo} {pattern}",
        "a {tempo} {pattern} on {register} {waveform}",
    ),
}


def make_caption(attrs: Attributes, rng: np.random.Generator) -> str:
    """A caption naming every attribute, in one of several phrasings and synonyms."""
    template = _TEMPLATES[attrs.pattern][rng.integers(len(_TEMPLATES[attrs.pattern]))]
    fields = {}
    for name in ("waveform", "register", "tempo", "pattern"):
        value = getattr(attrs, name)
        if value is not None:
            options = WORDS[name][value]
            fields[name] = options[rng.integers(len(options))]
    return template.format(**fields)


def partial_caption(attrs: Attributes, rng: np.random.Generator, omit: float) -> str | None:
    """A caption that leaves out each of waveform, register and tempo with probability ``omit``.

    The pattern is always named. Returns None when nothing was left out (keep the full caption).
    Captions that name only some attributes teach a model each word on its own, not only in
    the company it keeps in the training combinations (caption augmentation).
    """
    kept = [name for name in ("tempo", "register", "waveform")
            if getattr(attrs, name) is not None and rng.random() >= omit]
    if len(kept) == sum(getattr(attrs, name) is not None for name in ("tempo", "register", "waveform")):
        return None
    words = [WORDS[name][getattr(attrs, name)] for name in (*kept, "pattern")]
    return "a " + " ".join(options[rng.integers(len(options))] for options in words)


# Caption augmentation (training only): more synonyms for every value, more word orders, and
# partial descriptions. The base captions above stay as they were, so the evaluation prompts
# drawn with `make_caption` mean the same for every model.
EXTRA_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "waveform": {
        "sine": ("sine", "pure tone", "sinusoid", "soft sine"),
        "square": ("square", "pulse wave", "chiptune square", "hollow square wave"),
        "saw": ("saw", "saw lead", "buzzy sawtooth", "sawtooth wave"),
        "pluck": ("plucked", "harp-like pluck", "guitar-like pluck", "plucked harp"),
        "drums": ("drum kit", "drum machine", "noisy drums", "kit"),
    },
    "register": {
        "low": ("bassy", "bass", "low-register", "dark"),
        "mid": ("medium-pitched", "midrange", "middle", "mid"),
        "high": ("bright", "treble", "shrill", "very high"),
    },
    "tempo": {
        "slow": ("unhurried", "lazy", "gentle", "slow-paced"),
        "fast": ("brisk", "lively", "speedy", "up-tempo"),
    },
    "pattern": {
        "sustained": ("drone", "steady tone", "single held note", "long note"),
        "arpeggio": ("arpeggiated chord", "rolling arpeggio", "arpeggiated notes", "arpeggios"),
        "beat": ("drum pattern", "loop", "percussion pattern", "drum beat"),
    },
}
VOCABULARY: dict[str, dict[str, tuple[str, ...]]] = {
    name: {value: WORDS[name][value] + EXTRA_WORDS[name][value] for value in values}
    for name, values in WORDS.items()
}

# Word orders of augmented training captions; a field left out of a partial description is dropped
# with its punctuation.
_AUGMENTED_TEMPLATES = (
    "a {tempo} {register} {waveform} {pattern}",
    "{tempo} {pattern} played on a {register} {waveform}",
    "a {register} {waveform} playing a {tempo} {pattern}",
    "{register} {waveform}, {tempo} {pattern}",
    "a {tempo} {pattern} on a {register} {waveform}",
    "{pattern}: {tempo}, {register}, {waveform}",
    "{waveform}, {register}, {tempo} {pattern}",
)

# Paraphrases for evaluation only: word orders and joining words no training caption uses
# ("and", "the", "plays", "with", "in a ... way"), drawn from the whole `VOCABULARY`.
PARAPHRASE_TEMPLATES = {
    "tempo": (
        "{pattern} and {tempo}, the {waveform} is {register}",
        "the {register} {waveform} plays a {pattern}, {tempo}",
        "{tempo} and {register}: {waveform} with a {pattern}",
        "{waveform} {pattern} in a {tempo} way, {register}",
    ),
    "sustained": (
        "{pattern} and {register}, the {waveform}",
        "the {register} {waveform} plays a {pattern}",
        "{register}: {waveform} with a {pattern}",
        "{waveform} {pattern} in a {register} way",
    ),
}


def _fill(template: str, fields: dict[str, str | None]) -> str:
    """A template with its fields filled; empty fields are dropped with the punctuation around them."""
    text = template.format(**{k: v or "" for k, v in fields.items()})
    text = re.sub(r"\s+([,:])", r"\1", re.sub(r"\s+", " ", text)).strip()
    text = re.sub(r"([,:])(\s*[,:])+", r"\1", text)
    text = re.sub(r"^[,:\s]+|[,:\s]+$", "", text)
    return re.sub(r"\ba a\b|\ba an\b", "a", text)


def augmented_caption(attrs: Attributes, rng: np.random.Generator, omit: float = 0.15) -> str:
    """A training caption from the wide `VOCABULARY` in one of `_AUGMENTED_TEMPLATES`.

    Each of waveform, register and tempo is left out with probability ``omit`` (partial
    descriptions); the pattern is always named.
    """
    template = _AUGMENTED_TEMPLATES[rng.integers(len(_AUGMENTED_TEMPLATES))]
    fields: dict[str, str | None] = {}
    for name in ("waveform", "register", "tempo", "pattern"):
        value = getattr(attrs, name)
        options = VOCABULARY[name][value] if value is not None else ()
        word = options[rng.integers(len(options))] if options else None
        fields[name] = None if word is None or (name != "pattern" and rng.random() < omit) else word
    # A neutral noun keeps "a bright sound" a phrase when the waveform is left out.
    fields["waveform"] = fields["waveform"] or "sound"
    return _fill(template, fields)


def paraphrase_caption(attrs: Attributes, rng: np.random.Generator) -> str:
    """An evaluation prompt naming every attribute in a phrasing no training caption uses."""
    templates = PARAPHRASE_TEMPLATES["tempo" if attrs.tempo is not None else "sustained"]
    template = templates[rng.integers(len(templates))]
    fields = {}
    for name in ("waveform", "register", "tempo", "pattern"):
        value = getattr(attrs, name)
        options = VOCABULARY[name][value] if value is not None else ("",)
        fields[name] = options[rng.integers(len(options))]
    return _fill(template, fields)


def _word_pattern(word: str) -> str:
    # hyphen and space are interchangeable in prompts ("square-wave" / "square wave")
    parts = [re.escape(p) for p in re.split(r"[-\s]+", word)]
    return r"\b" + r"[-\s]+".join(parts) + r"\b"


def parse_caption(text: str) -> dict[str, str | None]:
    """The attributes a free-text prompt names (None where it names none), read from `WORDS`."""
    lowered = text.lower()
    found: dict[str, str | None] = {}
    for name, values in VOCABULARY.items():
        hits = []
        for value, words in values.items():
            for word in sorted(set(words) | {value}, key=len, reverse=True):
                match = re.search(_word_pattern(word), lowered)
                if match:
                    hits.append((match.start(), -len(word), value))
                    break
        # "high-pitched sawtooth" must not also read "pitched" as something else: first, longest hit wins
        found[name] = min(hits)[2] if hits else None
    if found["pattern"] is None and found["waveform"] == "drums":
        found["pattern"] = "beat"
    return found


# ----------------------------------------------------------------------------------- synthesis
def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency of a MIDI note (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _harmonic_amplitudes(waveform: str, f0: float, rng: np.random.Generator) -> np.ndarray:
    """Amplitude of harmonics 1..N below the band limit for a waveform family."""
    n = np.arange(1, max(1, int(BAND_LIMIT_HZ // f0)) + 1, dtype=np.float64)
    if waveform == "sine":
        amps = (n == 1).astype(np.float64)
    elif waveform == "square":
        amps = np.where(n % 2 == 1, 1.0 / n, 0.0)
    elif waveform == "saw":
        amps = 1.0 / n
    elif waveform == "pluck":
        # An ideal string plucked at relative position p: a_n ~ sin(n pi p) / n^2 (12 dB/octave).
        p = rng.uniform(0.12, 0.2)
        amps = np.abs(np.sin(n * np.pi * p)) / (n ** 2 * np.sin(np.pi * p))
    else:
        raise UsageError(f"unknown tonal waveform {waveform!r}")
    return amps


def _tone(waveform: str, midi: int, gate: int, rng: np.random.Generator) -> np.ndarray:
    """One band-limited note sounding for ``gate`` samples (4 ms attack, 20 ms release)."""
    f0 = midi_to_hz(midi)
    amps = _harmonic_amplitudes(waveform, f0, rng)
    n = np.arange(1, len(amps) + 1)
    # Partials below -80 dB change nothing audible or measurable; skipping them keeps synthesis fast.
    keep = amps > 1e-4 * amps.max()
    amps, n = amps[keep], n[keep][:, None]
    t = np.arange(gate) / SAMPLE_RATE
    partials = np.sin(2 * np.pi * f0 * n * t[None, :])
    if waveform == "pluck":
        # Higher partials die faster (string losses grow with frequency); low notes ring longer.
        tau1 = rng.uniform(0.5, 0.9) * (110.0 / f0) ** 0.3
        partials *= np.exp(-t[None, :] * (1.0 + 0.4 * (n - 1)) / tau1)
    wav = amps @ partials
    env = np.ones(gate)
    attack = min(int(0.004 * SAMPLE_RATE), gate)
    env[:attack] = np.linspace(0.0, 1.0, attack, endpoint=False)
    release = min(int(0.02 * SAMPLE_RATE), gate - attack)
    env[gate - release:] *= np.linspace(1.0, 0.0, release)
    return wav * env


def _noise_band(rng: np.random.Generator, length: int, low: float | None, high: float | None) -> np.ndarray:
    """White noise filtered to [low, high] Hz (either bound may be open)."""
    from scipy import signal  # ~0.5 s to import: only clip synthesis needs it, not the command line

    noise = rng.standard_normal(length)
    nyq = SAMPLE_RATE / 2
    if low and high:
        sos = signal.butter(4, [low / nyq, high / nyq], btype="bandpass", output="sos")
    elif low:
        sos = signal.butter(4, low / nyq, btype="highpass", output="sos")
    elif high:
        sos = signal.butter(4, high / nyq, btype="lowpass", output="sos")
    else:
        return noise
    return signal.sosfilt(sos, noise)


# Drum kits per register: (kick tone Hz, snare noise band, hat noise band); all voices scale with
# the register so its spectral centroid says low/mid/high.
_KITS = {
    "low": {"kick": (45.0, 60.0), "snare": (150.0, 700.0), "hat": (400.0, 1200.0)},
    "mid": {"kick": (110.0, 160.0), "snare": (900.0, 2500.0), "hat": (2000.0, 4500.0)},
    "high": {"kick": (500.0, 800.0), "snare": (2500.0, 5500.0), "hat": (5000.0, None)},
}


def _drum_hit(voice: str, register: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """One noise-drum hit (kick, snare or hat) tuned to a register."""
    kit = _KITS[register]
    t = np.arange(length) / SAMPLE_RATE
    if voice == "kick":
        f = rng.uniform(*kit["kick"])
        # A falling pitch sweep (3f -> f in ~30 ms) is what makes a kick sound struck.
        freq = f * (1.0 + 2.0 * np.exp(-t / 0.03))
        phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
        # A short body keeps the beat a noise-drum sound: a long decaying sine would read as a pitched note.
        body = np.sin(phase) * np.exp(-t / rng.uniform(0.04, 0.07))
        click = _noise_band(rng, length, kit["snare"][0], kit["snare"][1]) * np.exp(-t / 0.004)
        hit = body + 0.5 * click / (np.abs(click).max() + 1e-9)
    elif voice == "snare":
        low, high = kit["snare"]
        noise = _noise_band(rng, length, low, high)
        hit = noise / (np.abs(noise).max() + 1e-9) * np.exp(-t / rng.uniform(0.05, 0.09))
    else:
        low, high = kit["hat"]
        noise = _noise_band(rng, length, low, high)
        hit = 0.7 * noise / (np.abs(noise).max() + 1e-9) * np.exp(-t / rng.uniform(0.02, 0.04))
    return hit


@dataclass(frozen=True)
class Note:
    """One event of a clip: onset time (s), MIDI pitch (None for a drum hit) and voice."""

    onset: float
    pitch: int | None
    voice: str


def _onset_count(interval: float, duration: float, grid: bool) -> int:
    """How many notes or drum steps fit: free timing ends the last one >= 0.05 s before the clip does,
    grid timing starts one wherever the clip has time left (the last is cut at its end)."""
    if grid:
        return int(np.ceil(duration / interval - 1e-9))
    return int(np.floor((duration - 0.05) / interval))


def _arpeggio_notes(register: str, interval: float, duration: float, rng: np.random.Generator,
                    grid: bool = False, arpeggio: str = "varied") -> list[tuple[float, int]]:
    """Onsets and pitches of a triad arpeggio that stays inside the register's range (see `ARPEGGIOS`)."""
    low, high = REGISTER_MIDI[register]
    third = int(rng.choice([3, 4]))
    root = int(rng.integers(low, high - 7 + 1))
    shape = rng.integers(3)
    if arpeggio != "varied":
        third, shape = 4, 0
        root = FIXED_ROOT[register] if arpeggio == "fixed" else root
    chord = [root, root + third, root + 7]
    cycle = chord if shape == 0 else chord[::-1] if shape == 1 else chord + [chord[1]]
    return [(i * interval, cycle[i % len(cycle)]) for i in range(_onset_count(interval, duration, grid))]


def _check_style(timing: str, arpeggio: str, kit: str) -> None:
    """One clear error for an unknown timing, arpeggio or kit choice."""
    for name, value, choices in (("timing", timing, TIMINGS), ("arpeggio", arpeggio, ARPEGGIOS), ("kit", kit, KITS)):
        if value not in choices:
            raise UsageError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


HIT_SECONDS = 0.4  # the longest a drum hit rings
DRUM_VOICES = ("kick", "snare", "hat")


@functools.cache
def _fixed_hit(voice: str, register: str) -> np.ndarray:
    """The one hit a fixed kit plays for a voice in a register (its own generator, so always the same)."""
    rng = np.random.default_rng([REGISTERS.index(register), DRUM_VOICES.index(voice), 7])
    hit = _drum_hit(voice, register, int(HIT_SECONDS * SAMPLE_RATE), rng)
    hit.flags.writeable = False
    return hit


def render(attrs: Attributes, duration: float, rng: np.random.Generator,
           timing: str = "free", arpeggio: str = "varied", kit: str = "varied") -> tuple[np.ndarray, list[Note]]:
    """Synthesise one clip: float32 mono audio at `SAMPLE_RATE` and its note events.

    ``timing="grid"`` plays arpeggios and beats at `GRID_INTERVAL` (the interval is still drawn,
    so pitches and levels are those of the free clip) with notes up to the clip's end.
    ``arpeggio`` chooses the arpeggio's pitches (`ARPEGGIOS`), ``kit`` the drum sounds (`KITS`).
    """
    _check_style(timing, arpeggio, kit)
    grid = timing == "grid"
    length = round(duration * SAMPLE_RATE)
    wav = np.zeros(length)
    notes: list[Note] = []
    if attrs.pattern == "beat":
        interval = rng.uniform(*TEMPO_INTERVAL[attrs.tempo])
        interval = GRID_INTERVAL[attrs.tempo] if grid else interval
        # 8th-note grid, a hit on every step: kick on 1, snare on the back beat, hats between.
        bar = ["kick", "hat", "snare", "hat", "kick", "hat", "snare", "hat"]
        if rng.random() < 0.5 and kit == "varied":
            bar[5] = "kick"
        for i in range(_onset_count(interval, duration, grid)):
            start = round(i * interval * SAMPLE_RATE)
            voice = bar[i % len(bar)]
            hit = _drum_hit(voice, attrs.register, min(length - start, int(HIT_SECONDS * SAMPLE_RATE)), rng)
            level = rng.uniform(0.8, 1.0)
            if kit == "fixed":  # the varied hit and level were still drawn: the generator stays in step
                hit, level = _fixed_hit(voice, attrs.register)[:len(hit)], 0.9
            wav[start:start + len(hit)] += hit * level
            notes.append(Note(start / SAMPLE_RATE, None, voice))
    else:
        if attrs.pattern == "sustained":
            low, high = REGISTER_MIDI[attrs.register]
            events = [(0.0, int(rng.integers(low, high + 1)))]
            interval = duration
        else:
            interval = rng.uniform(*TEMPO_INTERVAL[attrs.tempo])
            interval = GRID_INTERVAL[attrs.tempo] if grid else interval
            events = _arpeggio_notes(attrs.register, interval, duration, rng, grid, arpeggio)
        # Notes are cut before the next onset (a small gap keeps every onset clean).
        gate = int((interval - 0.03) * SAMPLE_RATE) if attrs.pattern == "arpeggio" else length - int(0.05 * SAMPLE_RATE)
        for onset, pitch in events:
            start = round(onset * SAMPLE_RATE)
            tone = _tone(attrs.waveform, pitch, min(gate, length - start), rng)
            wav[start:start + len(tone)] += tone * rng.uniform(0.85, 1.0)
            notes.append(Note(start / SAMPLE_RATE, pitch, attrs.waveform))
    peak = np.abs(wav).max()
    wav = wav / (peak + 1e-9) * rng.uniform(0.4, 0.9)
    return wav.astype(np.float32), notes


# ----------------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class Clip:
    """A rendered clip with its caption, attributes and ground-truth note events."""

    index: int
    audio: np.ndarray  # [S] float32 at SAMPLE_RATE
    caption: str
    attributes: Attributes
    notes: tuple[Note, ...]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.audio) / SAMPLE_RATE


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of clip ``index`` of a split (independent of the number of clips)."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return np.random.default_rng([seed, SPLITS[split], index])


def _draw(seed: int, split: str, index: int, attrs: Attributes | None,
          timing: str = "free") -> tuple[Attributes, float, str, np.random.Generator]:
    """Attributes, duration and caption of a clip, and the generator left to render its audio."""
    rng = clip_rng(seed, split, index)
    combos = combinations(split)
    chosen = combos[rng.integers(len(combos))]  # drawn even when forced, so the rest stays the same
    attrs = attrs or chosen
    duration = float(DURATIONS[rng.integers(len(DURATIONS))])  # drawn for grid clips too (same captions)
    duration = GRID_DURATION if timing == "grid" else duration
    return attrs, duration, make_caption(attrs, rng), rng


def clip_caption(seed: int, split: str, index: int) -> tuple[Attributes, str]:
    """The attributes and caption of clip ``index`` without rendering its audio."""
    attrs, _, caption, _ = _draw(seed, split, index, None)
    return attrs, caption


def make_clip(seed: int, split: str, index: int, attrs: Attributes | None = None,
              timing: str = "free", arpeggio: str = "varied", kit: str = "varied") -> Clip:
    """Render clip ``index`` of a split; ``attrs`` forces a combination (default: drawn uniformly).

    ``timing="grid"``: the same attributes, caption and pitches, at `GRID_INTERVAL`, `GRID_DURATION` long.
    ``arpeggio``, ``kit``: the arpeggio's pitches (`ARPEGGIOS`) and the drum sounds (`KITS`); the
    same caption and timing.
    """
    attrs, duration, caption, rng = _draw(seed, split, index, attrs, timing)
    audio, notes = render(attrs, duration, rng, timing, arpeggio, kit)
    return Clip(index, audio, caption, attrs, tuple(notes))


def iter_clips(n_clips: int, seed: int = 0, split: str = "train", timing: str = "free",
               arpeggio: str = "varied", kit: str = "varied") -> Iterator[Clip]:
    """Clips 0..n_clips-1 of a split."""
    for i in range(n_clips):
        yield make_clip(seed, split, i, timing=timing, arpeggio=arpeggio, kit=kit)


def write_dataset(folder: str | Path, n_clips: int, seed: int = 0, split: str = "train",
                  omit_attributes: float = 0.0, augment_captions: float = 0.0, timing: str = "free",
                  arpeggio: str = "varied", kit: str = "varied") -> Path:
    """Write ``n_clips`` WAV files and ``manifest.jsonl`` (paths relative to it) into ``folder``.

    The manifest is the one `magnetkit.train.manifest.read_items` reads; each record also keeps
    the clip's ``attributes`` and ground-truth ``notes`` (onset, MIDI pitch, voice) for evaluation.

    Args:
        folder: output folder (created).
        n_clips: number of clips.
        seed: dataset seed; the same (seed, split) always gives the same clips.
        split: "train" or "valid" (training combinations) or "heldout" (`HELDOUT` only).
        omit_attributes: probability that a caption leaves out each of its waveform, register
            and tempo words (`partial_caption`; drawn from a generator of its own, so the audio
            and the other captions are the same for any value). 0 names every attribute.
        augment_captions: probability that a caption is replaced by an `augmented_caption` (wide
            vocabulary, more word orders, each attribute but the pattern left out with probability
            0.15; its own generator, so the audio is the same for any value). 0 keeps the base captions.
        timing: "free" (intervals drawn from `TEMPO_INTERVAL`, durations from `DURATIONS`) or
            "grid" (`GRID_INTERVAL`, every clip `GRID_DURATION` long, notes to the end; see `render`).
        arpeggio: the arpeggios' pitches, "varied", "ascending" or "fixed" (`ARPEGGIOS`).
        kit: the drum sounds, "varied" or "fixed" (`KITS`).

    Returns:
        The manifest's path.

    Raises:
        UsageError: unknown split, timing, arpeggio or kit, or a non-positive clip count.
    """
    import soundfile as sf

    _check_style(timing, arpeggio, kit)

    if n_clips <= 0:
        raise UsageError(f"n_clips must be positive, got {n_clips}")
    if not 0 <= omit_attributes <= 1:
        raise UsageError(f"omit_attributes must be in [0, 1], got {omit_attributes}")
    if not 0 <= augment_captions <= 1:
        raise UsageError(f"augment_captions must be in [0, 1], got {augment_captions}")
    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.jsonl"
    with manifest.open("w") as f:
        for clip in iter_clips(n_clips, seed, split, timing, arpeggio, kit):
            rel = f"audio/{split}_{clip.index:06d}.wav"
            sf.write(folder / rel, clip.audio, SAMPLE_RATE, subtype="PCM_16")
            caption = clip.caption
            if omit_attributes > 0:
                rng = np.random.default_rng([seed, SPLITS[split], clip.index, 1])
                caption = partial_caption(clip.attributes, rng, omit_attributes) or caption
            if augment_captions > 0:
                rng = np.random.default_rng([seed, SPLITS[split], clip.index, 2])
                if rng.random() < augment_captions:
                    caption = augmented_caption(clip.attributes, rng)
            record = {
                "path": rel,
                "caption": caption,
                "attributes": asdict(clip.attributes),
                "duration": clip.duration,
                "sample_rate": SAMPLE_RATE,
                "notes": [asdict(n) for n in clip.notes],
            }
            f.write(json.dumps(record) + "\n")
    return manifest

