"""Prompt adherence measured with signal processing: generate from captions, read the attributes back.

A caption names four attributes (waveform family, pitch register, tempo, pattern; see
`magnetkit_synth.dataset`). The fixed judge `magnetkit_synth.analysis.analyse` reads them from
audio (f0 for the register, onset rate for the tempo, periodicity for tonal vs noise, the
harmonic profile for the waveform family), so adherence is the share of generated clips whose
judged attribute equals the one the prompt asked for. Three references put the number in scale:

* **chance** — a uniformly random valid attribute combination (one of the 42) scored the same way,
  computed exactly rather than sampled;
* **no guidance** — the same model and seeds with classifier-free guidance off (cfg 1);
* **real clips** — the judge on the dataset's own clips for the same captions: its ceiling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from magnetkit.errors import UsageError
from magnetkit_synth.analysis import analyse
from magnetkit_synth.dataset import Attributes, attribute_grid, clip_caption, make_clip

ATTRIBUTES = ("waveform", "register", "tempo", "pattern")
# "tonal" is a fifth, coarser reading: pitched (sine/square/saw/pluck) against noise drums.
ROWS = ATTRIBUTES + ("tonal", "all four")


@dataclass(frozen=True)
class Prompt:
    """One evaluation prompt: its caption, the attributes it names, and the dataset clip it came from."""

    caption: str
    attributes: Attributes
    seed: int
    split: str
    index: int


def prompts(count: int, split: str = "heldout", seed: int = 1) -> list[Prompt]:
    """The first ``count`` captions of a dataset split (held-out: only combinations never trained on).

    Raises:
        UsageError: a non-positive count or an unknown split.
    """
    if count <= 0:
        raise UsageError(f"the number of prompts must be positive, got {count}")
    out = []
    for index in range(count):
        attrs, caption = clip_caption(seed, split, index)
        out.append(Prompt(caption, attrs, seed, split, index))
    return out


def matches(judged: Attributes, wanted: Attributes) -> dict[str, bool]:
    """Per row of `ROWS`: whether the judged clip has the attribute the prompt asked for."""
    hits = {name: getattr(judged, name) == getattr(wanted, name) for name in ATTRIBUTES}
    hits["tonal"] = (judged.waveform == "drums") == (wanted.waveform == "drums")
    hits["all four"] = all(hits[name] for name in ATTRIBUTES)
    return hits


def chance(wanted: Sequence[Attributes]) -> dict[str, float]:
    """Expected accuracy of a uniformly random valid combination, per row, over the prompts ``wanted``."""
    grid = attribute_grid()
    totals = {row: 0.0 for row in ROWS}
    for attrs in wanted:
        for guess in grid:
            for row, hit in matches(guess, attrs).items():
                totals[row] += hit / len(grid)
    return {row: total / len(wanted) for row, total in totals.items()}


def accuracy(judged: Sequence[Attributes], wanted: Sequence[Attributes]) -> dict[str, float]:
    """Share of clips whose judged attribute equals the wanted one, per row."""
    totals = {row: 0 for row in ROWS}
    for got, attrs in zip(judged, wanted):
        for row, hit in matches(got, attrs).items():
            totals[row] += hit
    return {row: total / len(wanted) for row, total in totals.items()}


@dataclass
class AdherenceReport:
    """Accuracy per row of `ROWS` for each compared system, and what it was measured on."""

    prompts: list[Prompt]
    columns: dict[str, dict[str, float]]  # system -> row -> accuracy
    judged: dict[str, list[Attributes]] = field(default_factory=dict)  # system -> judged attributes per prompt
    seconds: dict[str, float] = field(default_factory=dict)  # system -> generation wall time
    clip_seconds: float = 0.0

    def table(self) -> str:
        """The report as an aligned text table (one row per attribute, one column per system)."""
        names = list(self.columns)
        width = max(len(row) for row in ROWS) + 2
        cols = [max(len(name), 6) + 2 for name in names]
        lines = ["attribute".ljust(width) + "".join(name.rjust(w) for name, w in zip(names, cols))]
        for row in ROWS:
            lines.append(row.ljust(width) + "".join(f"{self.columns[name][row]:.1%}".rjust(w)
                                                     for name, w in zip(names, cols)))
        return "\n".join(lines)

    def per_combination(self, system: str) -> list[tuple[Attributes, int, float]]:
        """(combination, prompts, share judged exactly right) for ``system``, per prompted combination."""
        groups: dict[Attributes, list[bool]] = {}
        for prompt, got in zip(self.prompts, self.judged[system]):
            groups.setdefault(prompt.attributes, []).append(matches(got, prompt.attributes)["all four"])
        return [(attrs, len(hits), float(np.mean(hits))) for attrs, hits in groups.items()]


def judge_clips(audio: np.ndarray, sample_rate: int) -> list[Attributes]:
    """The attributes the judge reads from each clip of ``audio`` [B, C, S]."""
    return [analyse(np.asarray(clip, dtype=np.float64), sample_rate).attributes for clip in audio]


def generate_and_judge(pipeline, captions: list[str], *, seed: int, batch_size: int,
                       progress: Callable[[str], None] | None = None) -> tuple[list[Attributes], float, float]:
    """Generate one clip per caption (in batches, each seeded ``seed + first index``) and judge them.

    Returns:
        (judged attributes per caption, generation seconds, seconds of audio per clip).
    """
    judged: list[Attributes] = []
    spent, clip_seconds = 0.0, 0.0
    for start in range(0, len(captions), batch_size):
        batch = captions[start:start + batch_size]
        result = pipeline.generate(batch, seed=seed + start, progress=False)
        spent += result.seconds
        clip_seconds = result.audio.shape[-1] / result.sample_rate
        judged += judge_clips(result.audio.numpy(), result.sample_rate)
        if progress:
            progress(f"{start + len(batch)}/{len(captions)} generated ({spent:.0f} s)")
    return judged, spent, clip_seconds


def evaluate(pipelines: dict[str, object], chosen: list[Prompt], *, seed: int = 0, batch_size: int = 8,
             real_clips: bool = True, progress: Callable[[str], None] | None = None) -> AdherenceReport:
    """Adherence of each pipeline on ``chosen`` prompts, with chance and (optionally) the real clips.

    Args:
        pipelines: name -> loaded `Pipeline`, e.g. {"model": guided, "no guidance": cfg 1}.
        chosen: the prompts (see `prompts`).
        seed: sampling seed; every pipeline gets the same one, so columns differ only by the system.
        batch_size: clips generated together.
        real_clips: also judge the dataset's clips of the same captions (the judge's ceiling).
        progress: called with a one-line message after each batch.

    Returns:
        The report (columns in the order: pipelines, chance, real clips).

    Raises:
        UsageError: no prompts.
    """
    if not chosen:
        raise UsageError("adherence needs at least one prompt")
    wanted = [p.attributes for p in chosen]
    captions = [p.caption for p in chosen]
    report = AdherenceReport(prompts=chosen, columns={})
    for name, pipeline in pipelines.items():
        started = time.perf_counter()
        judged, spent, report.clip_seconds = generate_and_judge(
            pipeline, captions, seed=seed, batch_size=batch_size,
            progress=(lambda msg, name=name: progress(f"{name}: {msg}")) if progress else None)
        report.columns[name] = accuracy(judged, wanted)
        report.judged[name] = judged
        report.seconds[name] = spent if spent > 0 else time.perf_counter() - started
    report.columns["chance"] = chance(wanted)
    if real_clips:
        real = [analyse(make_clip(p.seed, p.split, p.index).audio).attributes for p in chosen]
        report.columns["real clips"] = accuracy(real, wanted)
        report.judged["real clips"] = real
    return report
