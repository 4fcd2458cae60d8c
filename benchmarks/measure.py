"""Measuring instruments: wall and CPU clocks, peak memory, FLOP counts, matmul throughput.

Every timing synchronises the device first, so on a GPU it measures finished work, not
queued kernels. CPU time over wall time is reported with each number: on a shared machine a
ratio well below the thread count means other processes took the cores and the number is slow.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from magnetkit import batching
from magnetkit.model.config import ModelConfig


# ---------------------------------------------------------------------------------- clocks
def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Clock:
    """Wall and process-CPU seconds of a block (``with clock.running(device): ...``), accumulated."""

    wall: float = 0.0
    cpu: float = 0.0

    @contextmanager
    def running(self, device: torch.device) -> Iterator[None]:
        """Time the block, synchronising ``device`` before and after."""
        synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            synchronize(device)
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu

    @property
    def load(self) -> float:
        """CPU seconds per wall second: about the thread count when the cores were ours."""
        return self.cpu / self.wall if self.wall else 0.0


# ---------------------------------------------------------------------------------- memory
# The process's memory and a block's peak: the same measurement `magnetkit.pick_batch_size` makes.
rss_bytes = batching.rss_bytes
PeakMemory = batching.PeakMemory


# ----------------------------------------------------------------------------------- FLOPs
@dataclass
class ForwardShape:
    """What one transformer call computed: rows (batch x guidance), frames, stage, heads."""

    rows: int
    frames: int
    stage: int
    heads: int  # output heads computed: 1 with stage_only, else K


def attended_keys(frames: int, stage: int, context: int) -> float:
    """Mean keys a query attends: all frames for stage 0, the ±context band (cut at the ends) above."""
    if stage == 0 or context < 0:
        return float(frames)
    total = sum(min(i + context, frames - 1) - max(i - context, 0) + 1 for i in range(frames))
    return total / frames


def matmul_flops(config: ModelConfig, shape: ForwardShape) -> float:
    """FLOPs (2 per multiply-add) of one forward's weight matmuls, the cross-attention cache given.

    Self-attention q/k/v and output projections, cross-attention queries and output projection,
    the feed-forward's two matmuls and the computed output heads.
    """
    D, hidden = config.dim, int(config.hidden_scale * config.dim)
    tokens = shape.rows * shape.frames
    per_layer = 2 * tokens * D * (4 * D + 2 * D + 2 * hidden)
    return config.num_layers * per_layer + 2 * tokens * D * config.cardinality * shape.heads


def attention_flops(config: ModelConfig, shape: ForwardShape, condition_length: int) -> float:
    """FLOPs of one forward's attention scores and weighted values, over the keys each query may see.

    Restricted stages count their ±context band only, not the masked-out work.
    """
    keys = attended_keys(shape.frames, shape.stage, config.subcodes_context) + condition_length
    return config.num_layers * 4 * shape.rows * shape.frames * keys * config.dim


def forward_flops(config: ModelConfig, shape: ForwardShape, condition_length: int) -> float:
    """Useful FLOPs of one forward: `matmul_flops` + `attention_flops`.

    Element-wise work (norms, GELU, softmax) is not counted, as is usual for model-FLOPs
    utilisation, so the achieved fraction of the matmul peak is a conservative figure.
    """
    return matmul_flops(config, shape) + attention_flops(config, shape, condition_length)


def cross_cache_flops(config: ModelConfig, rows: int, condition_length: int) -> float:
    """FLOPs of the condition's cross-attention keys and values for every layer."""
    return config.num_layers * 2 * rows * condition_length * config.dim * 2 * config.dim


# ---------------------------------------------------------------------------- matmul peak
@dataclass
class MatmulResult:
    """Throughput of one GEMM shape: the best of several timed repeats."""

    shape: tuple[int, int, int]
    flops_per_s: float  # per wall-clock second
    flops_per_cpu_s: float  # per second of this process's CPU time: robust to other processes' load
    load: float  # CPU seconds per wall second during the best repeat


@dataclass
class MatmulPeak:
    """The machine's measured matmul throughput: the best GEMM over a set of shapes."""

    dtype: torch.dtype
    results: list[MatmulResult] = field(default_factory=list)

    @property
    def best(self) -> MatmulResult:
        """The fastest shape by wall clock."""
        return max(self.results, key=lambda r: r.flops_per_s)

    @property
    def per_cpu_s(self) -> float:
        """The best throughput per CPU-second over all shapes."""
        return max(r.flops_per_cpu_s for r in self.results)


def measure_matmul(shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype,
                   repeats: int = 5, min_seconds: float = 0.2) -> MatmulResult:
    """Best-of-``repeats`` throughput of ``[M, K] @ [K, N]``, each repeat at least ``min_seconds``."""
    m, k, n = shape
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: first-call allocation and library dispatch
    clock = Clock()
    with clock.running(device):
        torch.mm(a, b, out=out)
    calls = max(1, int(min_seconds / max(clock.wall, 1e-6)))
    flops = 2 * m * k * n * calls
    best = MatmulResult(shape, 0.0, 0.0, 0.0)
    for _ in range(repeats):
        clock = Clock()
        with clock.running(device):
            for _ in range(calls):
                torch.mm(a, b, out=out)
        per_cpu_s = max(best.flops_per_cpu_s, flops / clock.cpu if clock.cpu else 0.0)
        if flops / clock.wall > best.flops_per_s:
            best = MatmulResult(shape, flops / clock.wall, per_cpu_s, clock.load)
        best.flops_per_cpu_s = per_cpu_s
    return best


def matmul_peak(device: torch.device, dtype: torch.dtype, model_shapes: list[tuple[int, int, int]],
                repeats: int = 5, squares: tuple[int, ...] = (1024, 2048, 4096)) -> MatmulPeak:
    """The best throughput over square GEMMs (1024, 2048, 4096) and the model's own GEMM shapes."""
    peak = MatmulPeak(dtype)
    squares = [(s, s, s) for s in squares]
    for shape in squares + model_shapes:
        peak.results.append(measure_matmul(shape, device, dtype, repeats))
    return peak


def best_peak(first: MatmulPeak, second: MatmulPeak) -> MatmulPeak:
    """Shape by shape, the faster of two measurements of the same shapes."""
    results = [max(a, b, key=lambda r: r.flops_per_s) for a, b in zip(first.results, second.results)]
    for result, a, b in zip(results, first.results, second.results):
        result.flops_per_cpu_s = max(a.flops_per_cpu_s, b.flops_per_cpu_s)
    return MatmulPeak(first.dtype, results)


def model_gemm_shapes(config: ModelConfig, tokens: int) -> list[tuple[int, int, int]]:
    """The transformer's GEMMs for ``tokens`` rows: q/k/v, output projections, feed-forward, head."""
    D, hidden = config.dim, int(config.hidden_scale * config.dim)
    return [(tokens, D, 3 * D), (tokens, D, D), (tokens, D, hidden), (tokens, hidden, D),
            (tokens, D, config.cardinality)]


def cpu_name() -> str:
    """The CPU's model name (Linux), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"
