"""Latency of MAGNeT without and with MusicGen rescoring, and of hybrid generation with 1 s and 3 s prefixes.

Tiny random models on the CPU (speed depends on the shapes, not the weights), one run, one table:

    python benchmarks/bench_rescoring_hybrid.py                      # 10 s, steps [20,10,10,10], 1 thread
    python benchmarks/bench_rescoring_hybrid.py --width 128 --layers 4 --threads 2 --repeats 5

Rows: MAGNeT alone (paper §3.3's baseline); MAGNeT with MusicGen rescoring at every step (Eq. 5);
the two-model hybrid (MusicGen prefix, then MAGNeT; §3.4) with 1 s and 3 s prefixes; the
single-model Hybrid-MAGNeT (its own causal prefix) with 1 s and 3 s; and MusicGen decoding the
whole clip autoregressively, for scale. MAGNeT and MusicGen have the same width and depth, so
the rows compare decoding schemes, not model sizes. Each number is the median of ``--repeats``
runs after one warm-up; "cpu/wall" near the thread count means the cores were ours (with 1 thread,
"cpu s" is the latency on an idle core).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from magnetkit.hybrid import HybridConfig, HybridGenerator, decode_prefix
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.pipeline import Pipeline
from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.recipe import load_recipe
from magnetkit.testing import FakeCodec, FakeCodecConfig, FakeConditioner, FakePlugin

CARD, CODEBOOKS, TEXT = 64, 4, "an upbeat electronic track with a catchy synth lead"


@dataclass
class Row:
    """One benchmarked mode: median wall and CPU seconds, the autoregressive part, CPU load."""

    name: str
    wall: float
    cpu: float
    autoregressive: float
    load: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds generated (default 10)")
    parser.add_argument("--steps", default="20,10,10,10", help="MAGNeT decoding steps per stage")
    parser.add_argument("--width", type=int, default=64, help="width of both transformers (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="layers of both transformers (default 2)")
    parser.add_argument("--batch", type=int, default=1, help="clips per generation")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per mode (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the shared CPU: 1)")
    return parser.parse_args(argv)


def build(args: argparse.Namespace, musicgen_dir: Path, **sections: dict) -> Pipeline:
    """A CPU pipeline: a random MAGNeT transformer, the fake codec and conditioner, ``sections`` added."""
    steps = [int(s) for s in args.steps.split(",")]
    recipe = load_recipe({"codec": {"name": "fake", "cardinality": CARD}, "conditioner": {"name": "fake"},
                          "generation": {"duration": args.duration, "decoding_steps": steps, "progress": False},
                          **sections})
    torch.manual_seed(0)
    model = MagnetTransformer(ModelConfig(dim=args.width, num_heads=4, num_layers=args.layers,
                                          num_codebooks=CODEBOOKS, cardinality=CARD,
                                          segment_duration=args.duration))
    return Pipeline(recipe, model.eval(), FakeConditioner(output_dim=args.width),
                    FakeCodec(FakeCodecConfig(cardinality=CARD)), device="cpu")


def timed(run: Callable[[], float], repeats: int) -> tuple[float, float, float, float]:
    """Median wall and CPU seconds, median autoregressive seconds (``run``'s return), CPU/wall overall."""
    run()  # warm-up: first-call allocations and lazy imports
    walls, cpus, parts = [], [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        parts.append(run())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), statistics.median(parts), sum(cpus) / sum(walls)


def modes(args: argparse.Namespace, musicgen_dir: Path) -> dict[str, Callable[[], float]]:
    """Each benchmarked mode as a function that generates once and returns its autoregressive seconds."""
    texts = [TEXT] * args.batch
    musicgen = {"name": "musicgen", "model": str(musicgen_dir)}
    plain = build(args, musicgen_dir)
    rescored = build(args, musicgen_dir, rescorer={**musicgen, "weight": 0.8})
    two = HybridGenerator.from_pipeline(build(args, musicgen_dir, hybrid={"autoregressive": musicgen}))
    one = HybridGenerator(build(args, musicgen_dir, hybrid={}))
    frames = int(args.duration * plain.frame_rate)

    def musicgen_alone() -> float:
        started = time.perf_counter()
        session = two.autoregressive.start(texts + [None] * len(texts))
        decode_prefix(session, len(texts), frames, CODEBOOKS, CARD, HybridConfig(), True)
        plain.decode(torch.zeros(len(texts), CODEBOOKS, frames, dtype=torch.long))
        return time.perf_counter() - started

    def hybrid(generator: HybridGenerator, seconds: float) -> Callable[[], float]:
        return lambda: generator.generate(texts, prefix_seconds=seconds, seed=0).autoregressive_seconds

    return {
        "MAGNeT": lambda: plain.generate(texts, seed=0) and 0.0,
        "MAGNeT + MusicGen rescoring": lambda: rescored.generate(texts, seed=0) and 0.0,
        "hybrid, MusicGen 1 s + MAGNeT": hybrid(two, 1.0),
        "hybrid, MusicGen 3 s + MAGNeT": hybrid(two, 3.0),
        "Hybrid-MAGNeT (one model), 1 s": hybrid(one, 1.0),
        "Hybrid-MAGNeT (one model), 3 s": hybrid(one, 3.0),
        "MusicGen alone (autoregressive)": musicgen_alone,
    }


def main(argv: list[str] | None = None) -> int:
    """Build, run every mode, print the table."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    register_plugin(FakePlugin(), "bench-fakes")
    from magnetkit_musicgen.testing import tiny_musicgen

    try:
        with tempfile.TemporaryDirectory() as folder:
            musicgen_dir = tiny_musicgen(folder, cardinality=CARD, num_codebooks=CODEBOOKS, width=args.width,
                                         layers=args.layers)
            rows = [Row(name, *timed(run, args.repeats)) for name, run in modes(args, musicgen_dir).items()]
    finally:
        unregister_plugin("bench-fakes")
        torch.set_num_threads(threads)
    base = rows[0].wall
    print(f"{args.duration:g} s at 50 frames/s, batch {args.batch}, MAGNeT steps [{args.steps}], both transformers "
          f"{args.layers} layers x {args.width} wide, torch {torch.__version__} CPU, {args.threads} thread(s), "
          f"median of {args.repeats}")
    print(f"{'mode':<34} {'latency s':>10} {'x MAGNeT':>9} {'cpu s':>7} {'of it AR s':>11} {'RTF':>7} "
          f"{'cpu/wall':>9}")
    for row in rows:
        print(f"{row.name:<34} {row.wall:>10.3f} {row.wall / base:>9.2f} {row.cpu:>7.3f} {row.autoregressive:>11.3f} "
              f"{row.wall / args.duration:>7.4f} {row.load:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
