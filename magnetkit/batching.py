"""Choosing how many clips to generate at once: the most clips per second within a memory budget.

Memory and speed per clip depend on the device, the model, the codec and the precision, so the
choice is measured, not modelled: short generations (one decoding step per codebook, the
requested duration) at batch 1, 2, 4, ... record clips per second (on a CPU per CPU-second of
this process, which a shared machine's other jobs disturb far less) and the peak memory each adds
over the loaded pipeline. The search stops at the first batch whose memory, extrapolated from the
last two probes, would exceed the budget, or once a doubling gains under ``min_gain`` in clips
per second (on a CPU the transformer's matmuls are near their roof from batch 1: see
benchmarks/RESULTS.md, "Batch throughput").
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from magnetkit.engine import Decoder
from magnetkit.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from magnetkit.pipeline import Pipeline

GIB = 2**30
PROBE_TEXT = "a probe of memory and speed"


@dataclass(frozen=True)
class BatchProbe:
    """One measured batch size: clips per second (per CPU-second on a CPU) and the peak memory it added (bytes)."""

    batch: int
    clips_per_second: float
    added_bytes: int


def default_memory_budget_gib(device: torch.device | str) -> float:
    """Half of what the device has free now: a GPU's free memory, or the CPU's available RAM."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
    else:
        free = available_ram_bytes()
    return max(free / 2 / GIB, 1 / 1024)


def available_ram_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def pick_batch_size(pipeline: Pipeline, duration: float, memory_budget_gib: float, *, max_batch: int = 256,
                    min_gain: float = 0.05) -> int:
    """The batch size that generates the most clips per second within ``memory_budget_gib``.

    Args:
        pipeline: a loaded `magnetkit.Pipeline` (its device, precision and decode options are used).
        duration: seconds per clip (longer than the model's window: one window is measured).
        memory_budget_gib: memory the generation may add on top of the loaded pipeline, in GiB
            (CUDA: the allocator's peak; CPU: the process's peak resident memory).
        max_batch: the largest batch size considered.
        min_gain: a doubling must raise clips per second by this fraction to be taken.
    Returns:
        The chosen batch size (1 when even one clip exceeds the budget: nothing smaller exists).
    Raises:
        UsageError: a budget or duration that is not positive.
    """
    probes = probe_batch_sizes(pipeline, duration, memory_budget_gib, max_batch=max_batch, min_gain=min_gain)
    fitting = [p for p in probes if p.added_bytes <= memory_budget_gib * GIB] or probes[:1]
    best = fitting[0]
    for probe in fitting[1:]:  # larger batches only when they are clearly faster
        if probe.clips_per_second >= best.clips_per_second * (1 + min_gain):
            best = probe
    return best.batch


def probe_batch_sizes(pipeline, duration: float, memory_budget_gib: float, *, max_batch: int = 256,
                      min_gain: float = 0.05) -> list[BatchProbe]:
    """Measure batch 1, 2, 4, ... until the budget or the speed-up runs out (see the module docstring)."""
    if not memory_budget_gib > 0:
        raise UsageError(f"memory budget must be > 0 GiB, got {memory_budget_gib}")
    if not duration > 0:
        raise UsageError(f"duration must be > 0 seconds, got {duration}")
    budget = memory_budget_gib * GIB
    # On a CPU every probe counts from the RSS before the first one: glibc may keep memory freed
    # by an earlier probe resident, which a per-probe start would subtract from the next.
    baseline = rss_bytes() if pipeline.device.type != "cuda" else None
    probes: list[BatchProbe] = []
    batch = 1
    while batch <= max_batch:
        if len(probes) >= 2:  # memory grows about linearly with the batch: extrapolate before trying
            a, b = probes[-2], probes[-1]
            per_clip = max(b.added_bytes - a.added_bytes, 0) / (b.batch - a.batch)
            if b.added_bytes + per_clip * (batch - b.batch) > budget:
                break
        probes.append(probe_batch(pipeline, batch, duration, baseline))
        if probes[-1].added_bytes > budget:
            break
        if len(probes) >= 2 and probes[-1].clips_per_second < probes[-2].clips_per_second * (1 + min_gain):
            break
        batch *= 2
    return probes


def probe_batch(pipeline, batch: int, duration: float, baseline: int | None = None) -> BatchProbe:
    """Time one short generation of ``batch`` clips (one step per codebook) and its added peak memory.

    ``baseline``: the CPU resident memory to count from (default: the RSS when the probe starts).
    """
    frames = min(max(int(duration * pipeline.frame_rate), 1), pipeline.window_frames)
    steps = [1] * pipeline.model.config.num_codebooks
    decoder = Decoder(pipeline.model, pipeline.scheduler, pipeline.sampler, options=pipeline.recipe.decode)
    generator = torch.Generator(pipeline.device).manual_seed(0)
    with PeakMemory(pipeline.device, baseline) as memory, torch.no_grad():
        started = time.perf_counter(), time.process_time()
        guidance = pipeline.guidance([PROBE_TEXT] * batch, None)
        codes = decoder.generate(batch, frames, steps, guidance, None, generator)
        pipeline.decode(codes)
        if pipeline.device.type == "cuda":
            torch.cuda.synchronize(pipeline.device)
        wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    # On a CPU, this process's CPU seconds: other jobs on a shared machine disturb them far less than
    # wall time (with every thread busy they are the wall time times the thread count).
    seconds = wall if pipeline.device.type == "cuda" else cpu
    return BatchProbe(batch, batch / max(seconds, 1e-9), memory.added)


def rss_bytes() -> int:
    """This process's resident memory (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class PeakMemory:
    """Peak memory added during a block: CUDA's allocator statistics, or the RSS sampled every ms."""

    def __init__(self, device: torch.device, start: int | None = None):
        self.device, self.start, self.peak = device, 0, 0
        self._given_start = start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.peak = rss_bytes()
            self.start = self.peak if self._given_start is None else self._given_start
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())

    @property
    def added(self) -> int:
        """Bytes above the start."""
        return max(self.peak - self.start, 0)
