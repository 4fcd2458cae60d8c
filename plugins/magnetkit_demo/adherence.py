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

Two more rows say whether a clip keeps playing to its end (``full length``: no silence longer
than its judged pattern allows, `magnetkit_synth.analysis.Analysis.full_length`), and whether
it does so with all four attributes right. Chance has no value there.

Paraphrased prompts (``paraphrase=True``) name the same attributes in phrasings that no training
caption uses (`magnetkit_synth.dataset.paraphrase_caption`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from magnetkit import UsageError
from magnetkit_synth.analysis import analyse
from magnetkit_synth.dataset import SPLITS, Attributes, attribute_grid, clip_caption, make_clip, paraphrase_caption

from magnetkit_demo.config import DemoData

ATTRIBUTES = ("waveform", "register", "tempo", "pattern")
# "tonal" is a fifth, coarser reading: pitched (sine/square/saw/pluck) against noise drums.
ROWS = ATTRIBUTES + ("tonal", "all four", "full length", "all four, full length")
LENGTH_ROWS = ("full length", "all four, full length")


@dataclass(frozen=True)
class Prompt:
    """One evaluation prompt: its caption, the attributes it names, and the dataset clip it came from."""

    caption: str
    attributes: Attributes
    seed: int
    split: str
    index: int


def prompts(count: int, split: str = "heldout", seed: int = 1, paraphrase: bool = False) -> list[Prompt]:
    """The first ``count`` captions of a dataset split (held-out: only combinations never trained on).

    With ``paraphrase``, each clip's caption is replaced by a `paraphrase_caption` of its attributes
    (its own generator: the attributes and the real clips stay the same).

    Raises:
        UsageError: a non-positive count or an unknown split.
    """
    if count <= 0:
        raise UsageError(f"the number of prompts must be positive, got {count}")
    out = []
    for index in range(count):
        attrs, caption = clip_caption(seed, split, index)
        if paraphrase:
            caption = paraphrase_caption(attrs, np.random.default_rng([seed, SPLITS[split], index, 3]))
        out.append(Prompt(caption, attrs, seed, split, index))
    return out


def matches(judged: Attributes, wanted: Attributes, full_length: bool | None = None) -> dict[str, bool]:
    """Per row of `ROWS`: whether the judged clip has the attribute the prompt asked for.

    The two length rows are present only when ``full_length`` (the judge's reading) is given.
    """
    hits = {name: getattr(judged, name) == getattr(wanted, name) for name in ATTRIBUTES}
    hits["tonal"] = (judged.waveform == "drums") == (wanted.waveform == "drums")
    hits["all four"] = all(hits[name] for name in ATTRIBUTES)
    if full_length is not None:
        hits["full length"] = full_length
        hits["all four, full length"] = full_length and hits["all four"]
    return hits


def chance(wanted: Sequence[Attributes]) -> dict[str, float]:
    """Expected accuracy of a uniformly random valid combination, per row, over the prompts ``wanted``."""
    grid = attribute_grid()
    totals = {row: 0.0 for row in ROWS if row not in LENGTH_ROWS}
    for attrs in wanted:
        for guess in grid:
            for row, hit in matches(guess, attrs).items():
                totals[row] += hit / len(grid)
    return {**{row: total / len(wanted) for row, total in totals.items()}, **{row: float("nan") for row in LENGTH_ROWS}}


def accuracy(judged: Sequence[Attributes], wanted: Sequence[Attributes],
             full_length: Sequence[bool] | None = None) -> dict[str, float]:
    """Share of clips whose judged attribute equals the wanted one, per row (length rows NaN without ``full_length``)."""
    totals = {row: 0 for row in ROWS}
    fulls = full_length if full_length is not None else [None] * len(wanted)
    for got, attrs, full in zip(judged, wanted, fulls):
        for row, hit in matches(got, attrs, full).items():
            totals[row] += hit
    out = {row: total / len(wanted) for row, total in totals.items()}
    if full_length is None:
        out.update({row: float("nan") for row in LENGTH_ROWS})
    return out


@dataclass
class AdherenceReport:
    """Accuracy per row of `ROWS` for each compared system, and what it was measured on."""

    prompts: list[Prompt]
    columns: dict[str, dict[str, float]]  # system -> row -> accuracy
    judged: dict[str, list[Attributes]] = field(default_factory=dict)  # system -> judged attributes per prompt
    full_length: dict[str, list[bool]] = field(default_factory=dict)  # system -> plays to its end, per prompt
    seconds: dict[str, float] = field(default_factory=dict)  # system -> generation wall time
    clip_seconds: float = 0.0

    def table(self) -> str:
        """The report as an aligned text table (one row per attribute, one column per system)."""
        names = list(self.columns)
        width = max(len(row) for row in ROWS) + 2
        cols = [max(len(name), 6) + 2 for name in names]
        lines = ["attribute".ljust(width) + "".join(name.rjust(w) for name, w in zip(names, cols))]
        for row in ROWS:
            lines.append(row.ljust(width) + "".join(_percent(self.columns[name][row]).rjust(w)
                                                     for name, w in zip(names, cols)))
        return "\n".join(lines)

    def per_combination(self, system: str) -> list[tuple[Attributes, int, float]]:
        """(combination, prompts, share judged exactly right) for ``system``, per prompted combination."""
        groups: dict[Attributes, list[bool]] = {}
        for prompt, got in zip(self.prompts, self.judged[system]):
            groups.setdefault(prompt.attributes, []).append(matches(got, prompt.attributes)["all four"])
        return [(attrs, len(hits), float(np.mean(hits))) for attrs, hits in groups.items()]


def _percent(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.1%}"


def judge_clips(audio: np.ndarray, sample_rate: int) -> list[tuple[Attributes, bool]]:
    """(judged attributes, plays to its end) for each clip of ``audio`` [B, C, S]."""
    results = [analyse(np.asarray(clip, dtype=np.float64), sample_rate) for clip in audio]
    return [(result.attributes, result.full_length) for result in results]


def generate_and_judge(pipeline, captions: list[str], *, seed: int, batch_size: int,
                       progress: Callable[[str], None] | None = None
                       ) -> tuple[list[tuple[Attributes, bool]], float, float]:
    """Generate one clip per caption (in batches, each seeded ``seed + first index``) and judge them.

    Returns:
        ((judged attributes, full length) per caption, generation seconds, seconds of audio per clip).
    """
    judged: list[tuple[Attributes, bool]] = []
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
             real_clips: bool = True, progress: Callable[[str], None] | None = None,
             data: DemoData = DemoData()) -> AdherenceReport:
    """Adherence of each pipeline on ``chosen`` prompts, with chance and (optionally) the real clips.

    Args:
        pipelines: name -> loaded `Pipeline`, e.g. {"model": guided, "no guidance": cfg 1}.
        chosen: the prompts (see `prompts`).
        seed: sampling seed; every pipeline gets the same one, so columns differ only by the system.
        batch_size: clips generated together.
        real_clips: also judge the dataset's clips of the same captions (the judge's ceiling).
        progress: called with a one-line message after each batch.
        data: how the real clips are rendered (`DemoData.style`); by default as the default model's
            training data.

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
        report.columns[name] = accuracy([a for a, _ in judged], wanted, [f for _, f in judged])
        report.judged[name] = [a for a, _ in judged]
        report.full_length[name] = [f for _, f in judged]
        report.seconds[name] = spent if spent > 0 else time.perf_counter() - started
    report.columns["chance"] = chance(wanted)
    if real_clips:
        real = [analyse(make_clip(p.seed, p.split, p.index, **data.style).audio) for p in chosen]
        report.columns["real clips"] = accuracy([r.attributes for r in real], wanted, [r.full_length for r in real])
        report.judged["real clips"] = [r.attributes for r in real]
        report.full_length["real clips"] = [r.full_length for r in real]
    return report


def mean_report(reports: Sequence[AdherenceReport]) -> AdherenceReport:
    """One report whose columns are the means over ``reports`` (same prompts, other sampling seeds).

    A column present in only some reports (the real clips, judged once) keeps its values; the
    judged attributes and the per-combination view are those of all the reports pooled.
    """
    if not reports:
        raise UsageError("no reports to average")
    first = reports[0]
    columns: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(n for r in reports for n in r.columns):
        present = [r.columns[name] for r in reports if name in r.columns]
        columns[name] = {row: float(np.mean([c[row] for c in present])) for row in ROWS}
    pooled = AdherenceReport(prompts=[p for _ in reports for p in first.prompts], columns=columns,
                             clip_seconds=first.clip_seconds)
    for name in first.judged:
        with_it = [r for r in reports if name in r.judged]
        pooled.judged[name] = [a for r in with_it for a in r.judged[name]]
        pooled.full_length[name] = [f for r in with_it for f in r.full_length[name]]
        pooled.seconds[name] = float(np.mean([r.seconds[name] for r in with_it if name in r.seconds] or [0.0]))
    return pooled
