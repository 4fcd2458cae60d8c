"""MAGNeT generation benchmark: latency, real-time factor, time by part, memory, FLOPs, utilisation.

    python -m benchmarks.generation --quick            # the README table on a CPU, a few minutes
    python -m benchmarks.generation --device cuda      # every size and batch on a GPU

Each generation is timed by part: the conditioner (T5), the transformer (every forward plus
the condition's cross-attention cache), sampling and masking (the rest of the decoding loop:
scheduler, CFG mix, sampler) and the codec's decode. FLOPs are the model's useful matmul FLOPs
(`measure.forward_flops`), set against this machine's measured matmul throughput. The speed
options of `magnetkit.engine.DecodeOptions` are then compared on and off, side by side, in the
same run. Weights are random (`systems.py`); speed does not depend on them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from benchmarks.measure import (
    Clock,
    ForwardShape,
    MatmulPeak,
    PeakMemory,
    best_peak,
    cpu_name,
    cross_cache_flops,
    forward_flops,
    matmul_peak,
    model_gemm_shapes,
)
from benchmarks.systems import SIZES, build_pipeline, parameter_count
from magnetkit.batching import probe_batch
from magnetkit.engine import DecodeOptions, Decoder, keep_freed_memory
from magnetkit.pipeline import Pipeline
from magnetkit.precision import model_precision, prepare_model

PROMPT = "80s electronic track with melodic synthesizers, catchy beat and groovy bass"
GIB = 2**30


# ------------------------------------------------------------------------ instrumented decoder
class TimedDecoder(Decoder):
    """A `Decoder` that times its transformer calls and records their shapes (for FLOPs)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transformer_clock = Clock()
        self.forwards: list[ForwardShape] = []
        self.cache_rows = 0

    def condition_cache(self, condition: torch.Tensor) -> list | None:
        """Time the cross-attention cache as transformer work."""
        with self.transformer_clock.running(condition.device):
            cache = super().condition_cache(condition)
        self.cache_rows = condition.shape[0] if cache is not None else 0
        return cache

    def transformer_logits(self, codes: torch.Tensor, stage: int, condition: torch.Tensor,
                           cross_cache: list | None) -> torch.Tensor:
        """Time one transformer call and record what it computed."""
        with self.transformer_clock.running(codes.device):
            logits = super().transformer_logits(codes, stage, condition, cross_cache)
        heads = 1 if self.options.stage_only else codes.shape[1]
        self.forwards.append(ForwardShape(codes.shape[0], codes.shape[-1], stage, heads))
        return logits


# ------------------------------------------------------------------------------- one generation
@dataclass
class Run:
    """One timed generation."""

    label: str
    size: str
    batch: int
    steps: list[int]
    precision: str  # decode.precision: float32, bfloat16, float16, int8
    device: str  # "cpu" or "cuda"
    seconds_of_audio: float
    total: Clock
    conditioner: Clock
    loop: Clock
    transformer: Clock
    codec: Clock
    peak_bytes: int
    added_bytes: int
    flops: float
    codes: torch.Tensor = field(repr=False)

    def part_seconds(self, clock: Clock) -> float:
        """A part's CPU seconds on a CPU (robust to other processes' load), wall seconds on a GPU."""
        return clock.wall if self.device == "cuda" else clock.cpu

    @property
    def rtf(self) -> float:
        """Generation seconds per second of audio (one clip; the batch makes ``batch`` clips)."""
        return self.total.wall / self.seconds_of_audio


def generate_once(pipe: Pipeline, size: str, batch: int, steps: list[int], duration: float,
                  options: DecodeOptions, seed: int, label: str, cfg: tuple[float, float] | None = None) -> Run:
    """One text-to-audio generation of ``batch`` clips, timed by part (mirrors `Pipeline._run`).

    On a GPU the per-forward clocks synchronise the device, which removes the overlap of host and
    device work; the latency there comes from a second generation without them.
    """
    model = model_at(pipe, options.precision)
    decoder = TimedDecoder(model, pipe.scheduler, pipe.sampler, None, None, options)
    run = timed_generation(pipe, decoder, batch, steps, duration, seed, cfg)
    config = pipe.model.config
    length = run.pop("condition_length")
    flops = sum(forward_flops(config, shape, length) for shape in decoder.forwards)
    flops += cross_cache_flops(config, decoder.cache_rows, length)
    if pipe.device.type == "cuda":
        plain = Decoder(model, pipe.scheduler, pipe.sampler, None, None, options)
        run["total"] = timed_generation(pipe, plain, batch, steps, duration, seed, cfg)["total"]
    return Run(label, size, batch, list(steps), options.precision, pipe.device.type,
               transformer=decoder.transformer_clock,
               flops=flops, **run)


_CONVERTED: dict[tuple[int, str], torch.nn.Module] = {}


def model_at(pipe: Pipeline, precision: str) -> torch.nn.Module:
    """The pipeline's float32 transformer, or a converted copy of it (made once per precision)."""
    if precision == model_precision(pipe.model):
        return pipe.model
    key = (id(pipe.model), precision)
    if key not in _CONVERTED:
        _CONVERTED[key] = prepare_model(copy.deepcopy(pipe.model), precision, pipe.device)
    return _CONVERTED[key]


def timed_generation(pipe: Pipeline, decoder: Decoder, batch: int, steps: list[int], duration: float, seed: int,
                     cfg: tuple[float, float] | None) -> dict:
    """Condition, decode, and decode to audio, with a clock on each part and on the whole."""
    device = pipe.device
    total, conditioner, loop, codec = Clock(), Clock(), Clock(), Clock()
    generator = torch.Generator(device).manual_seed(seed)
    with PeakMemory(device) as memory, total.running(device):
        with conditioner.running(device):
            guidance = pipe.guidance([PROMPT] * batch, None)
        if cfg is not None:
            guidance = dataclasses.replace(guidance, cfg_max=cfg[0], cfg_min=cfg[1])
        with loop.running(device):
            codes = decoder.generate(batch, int(duration * pipe.frame_rate), steps, guidance, None, generator)
        with codec.running(device):
            audio = pipe.decode(codes)
    return {"seconds_of_audio": audio.shape[-1] / pipe.sample_rate, "total": total, "conditioner": conditioner,
            "loop": loop, "codec": codec, "peak_bytes": memory.peak, "added_bytes": memory.added,
            "codes": codes.cpu(), "condition_length": guidance.condition.shape[1]}


def best_of(repeats: int, *args: Any, **kwargs: Any) -> Run:
    """The fastest of ``repeats`` `generate_once` runs (the least disturbed one on a shared machine)."""
    return min((generate_once(*args, **kwargs) for _ in range(repeats)), key=lambda run: run.total.wall)


# ----------------------------------------------------------------------------- the experiments
def option_variants(device: torch.device, compile_on_cpu: bool) -> list[tuple[str, DecodeOptions]]:
    """Each speed option switched against the default, plus everything off (the unoptimised loop)."""
    default = DecodeOptions()
    variants = [
        ("default (all on)", default),
        ("cross_cache off", default.replace(cross_cache=False)),
        ("stage_only off", default.replace(stage_only=False)),
        ("blocked_attention off", default.replace(blocked_attention=False)),
        ("check_every_step on", default.replace(check_every_step=True)),
        ("masked_only off", default.replace(masked_only=False)),
        ("cpu_kernels off", default.replace(cpu_kernels=False)),
        ("all off", DecodeOptions(cross_cache=False, stage_only=False, skip_unit_guidance=False,
                                  blocked_attention=False, check_every_step=True, masked_only=False,
                                  cpu_kernels=False)),
    ]
    if device.type != "cpu":  # a CPU-only switch
        variants = [variant for variant in variants if variant[0] != "cpu_kernels off"]
    if device.type == "cuda":
        variants += [("compile", default.replace(compile=True)),
                     ("compile + cuda_graphs", default.replace(compile=True, cuda_graphs=True))]
    elif compile_on_cpu:
        variants += [("compile", default.replace(compile=True)),
                     ("compile + frozen weights", default.replace(compile=True, compile_freeze=True))]
    return variants


def main_table(args: argparse.Namespace, device: torch.device, parameters: dict[str, int]) -> list[Run]:
    """Every size x batch at the requested steps and duration, default options (parameter counts noted)."""
    runs = []
    for name in args.sizes:
        pipe = build_pipeline(SIZES[name], str(device), sampler=args.sampler)
        parameters[name] = parameter_count(pipe.model)
        for index, batch in enumerate(args.batches_of.get(name, args.batches)):
            if index == 0 or device.type == "cuda":  # a GPU warms up per shape (allocator, kernels chosen)
                warm_up(pipe, name, batch, args.duration, DecodeOptions())
            runs.append(best_of(args.repeats, pipe, name, batch, args.steps, args.duration, DecodeOptions(),
                                args.seed, f"{name} x{batch}"))
            print(format_run_line(runs[-1]), file=sys.stderr, flush=True)
        del pipe
        gc.collect()
    return runs


def sampling_table(args: argparse.Namespace, device: torch.device) -> list[Run]:
    """top-p drawn as audiocraft draws it, then each faster draw and CPU switch added in turn.

    The sorting draw and the CPU loop draw (``sampler.cpu_kernel``) sample audiocraft's
    distribution with other random streams, so codes differ from the first row's by design
    (tests/plugins/test_fast_draw.py checks the distributions).
    """
    from magnetkit_samplers import TopPSampler

    pipe = build_pipeline(SIZES[args.sampling_size], str(device), sampler="top_p")

    def top_p(**changes: bool) -> TopPSampler:
        return TopPSampler(pipe.sampler.config.model_copy(update=changes))

    no_kernels = DecodeOptions(cpu_kernels=False)
    rows = [("audiocraft_stream (sort + multinomial)", top_p(audiocraft_stream=True), DecodeOptions()),
            ("sorting draw, masked_only off", top_p(cpu_kernel=False), no_kernels.replace(masked_only=False)),
            ("sorting draw, masked_only on", top_p(cpu_kernel=False), no_kernels),
            ("sorting draw, masked_only + cpu_kernels", top_p(cpu_kernel=False), DecodeOptions()),
            ("loop draw, masked_only off", pipe.sampler, DecodeOptions(masked_only=False)),
            ("loop draw, masked_only + cpu_kernels (default)", pipe.sampler, DecodeOptions())]
    runs, default_sampler = [], pipe.sampler
    for label, sampler, options in rows:
        pipe.sampler = sampler
        # Every row: each draw settles its own allocations (and numba loads its compiled loops).
        warm_up(pipe, args.sampling_size, args.sampling_batch, args.duration, options)
        runs.append(best_of(args.repeats, pipe, args.sampling_size, args.sampling_batch, args.steps,
                            args.duration, options, args.seed, label))
        print(format_run_line(runs[-1]), file=sys.stderr, flush=True)
    pipe.sampler = default_sampler
    return runs


def options_tables(args: argparse.Namespace, device: torch.device,
                   parameters: dict[str, int]) -> tuple[list[Run], list[Run]]:
    """The speed options on and off at one size and batch, greedy (so codes must match), side by side.

    Returns the option variants (default first) and the CFG-coefficient-1 pair (skipping off first).
    """
    pipe = build_pipeline(SIZES[args.compare_size], str(device), sampler="greedy")
    parameters[args.compare_size] = parameter_count(pipe.model)
    variants = [(label, options, None) for label, options in option_variants(device, args.compile)
                if args.variants is None or label in args.variants]
    # cfg_max = cfg_min = 1: every step's coefficient is exactly 1, so the null rows can be skipped.
    unit = [("cfg 1, skip_unit_guidance off", DecodeOptions(skip_unit_guidance=False), (1.0, 1.0)),
            ("cfg 1, skip_unit_guidance on", DecodeOptions(), (1.0, 1.0))]
    unit = [variant for variant in unit if args.variants is None or "cfg 1" in args.variants]
    # keep_freed_memory() cannot be undone, so its row comes last, after every row without it.
    memory = [] if args.keep_freed_memory or device.type != "cpu" else [("keep_freed_memory()", DecodeOptions(), None)]
    memory = [row for row in memory if args.variants is None or row[0] in args.variants]
    runs = []
    for label, options, cfg in variants + memory + unit:
        if label == "keep_freed_memory()":
            keep_freed_memory()
        if not runs or options.compile:  # the first run settles allocations; compiling needs its own
            warm_up(pipe, args.compare_size, args.compare_batch, args.duration, options)
        runs.append(best_of(args.repeats, pipe, args.compare_size, args.compare_batch, args.compare_steps,
                            args.duration, options, args.seed, label, cfg))
        print(format_run_line(runs[-1]), file=sys.stderr, flush=True)
    split = len(variants) + len(memory)
    return runs[:split], runs[split:]


def precision_table(args: argparse.Namespace, device: torch.device, parameters: dict[str, int]) -> list[Run]:
    """decode.precision side by side (with and without torch.compile if asked) at each batch, greedy.

    Every row decodes the same text from the same weights; the first row (float32, batch 1) is the
    reference of the speed-up and token-agreement columns.
    """
    pipe = build_pipeline(SIZES[args.compare_size], str(device), sampler="greedy")
    parameters[args.compare_size] = parameter_count(pipe.model)
    # Eager rows first, compiled rows last: ``--time-budget`` drops what does not fit, compiling first.
    rows = [(compiled, batch, precision) for compiled in ([False, True] if args.precision_compile else [False])
            for batch in args.precision_batches for precision in args.precisions]
    runs, started = [], time.perf_counter()
    for compiled, batch, precision in rows:
        if args.time_budget and time.perf_counter() - started > args.time_budget:
            print(f"  time budget of {args.time_budget:g} s spent: rows from "
                  f"'{precision}{' + compile' if compiled else ''} x{batch}' on skipped", file=sys.stderr, flush=True)
            break
        options = DecodeOptions(precision=precision, compile=compiled)
        label = f"{precision}{' + compile' if compiled else ''} x{batch}"
        # Every row warms up: a converted copy's first calls pay for its allocations (and compiling).
        warm_up(pipe, args.compare_size, batch, args.duration, options)
        runs.append(best_of(args.repeats, pipe, args.compare_size, batch, args.compare_steps, args.duration,
                            options, args.seed, label))
        print(format_run_line(runs[-1]), file=sys.stderr, flush=True)
    _CONVERTED.clear()
    return runs


def batch_curve(args: argparse.Namespace, device: torch.device) -> list[str]:
    """Clips per second against batch size (default options), with the probes `pick_batch_size` uses."""
    pipe = build_pipeline(SIZES[args.curve_size], str(device), sampler="top_p")
    lines = [f"## Batch throughput ({args.curve_size}, top_p, steps {','.join(map(str, args.steps))}, "
             f"{args.duration:g} s clips)", "",
             "| batch | latency s | CPU s | clips/s | clips per CPU-s | loop % transformer | peak mem GiB (+gen) "
             "| probe clips/s (1 step/stage) | probe +GiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    warm_up(pipe, args.curve_size, 1, args.duration, DecodeOptions())
    for batch in args.curve_batches:
        run = best_of(args.repeats, pipe, args.curve_size, batch, args.steps, args.duration, DecodeOptions(),
                      args.seed, f"{args.curve_size} x{batch}")
        print(format_run_line(run), file=sys.stderr, flush=True)
        probe = probe_batch(pipe, batch, args.duration)
        part = run.part_seconds
        lines.append(f"| {batch} | {run.total.wall:.2f} | {run.total.cpu:.2f} | {batch / run.total.wall:.2f} "
                     f"| {batch / run.total.cpu:.2f} | {100 * part(run.transformer) / part(run.loop):.1f} "
                     f"| {run.peak_bytes / GIB:.2f} (+{run.added_bytes / GIB:.2f}) | {probe.clips_per_second:.2f} "
                     f"| {probe.added_bytes / GIB:.2f} |")
    return lines + [""]


def warm_up(pipe: Pipeline, name: str, batch: int, duration: float, options: DecodeOptions) -> None:
    """One step per stage first: allocator, library dispatch, compilation and CUDA graphs settle."""
    generate_once(pipe, name, batch, [1] * pipe.model.config.num_codebooks, duration, options, 0, "warm-up")


# ------------------------------------------------------------------------------------ report
def format_run_line(run: Run) -> str:
    """A one-line progress note."""
    return (f"  {run.label}: {run.total.wall:.2f} s (transformer {run.transformer.wall:.2f} s, "
            f"cpu/wall {run.total.load:.2f})")


def machine_section(device: torch.device, peaks: dict[str, MatmulPeak], threads: int, repeats: int) -> list[str]:
    """The machine, the software and its measured matmul throughput."""
    lines = ["## Machine", ""]
    if device.type == "cuda":
        lines.append(f"- GPU: {torch.cuda.get_device_name(device)}; host CPU: {cpu_name()}")
    else:
        lines.append(f"- CPU: {cpu_name()}, {os.cpu_count()} cores visible, torch threads {threads}")
    lines.append(f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.system()}")
    for name, peak in peaks.items():
        lines += ["", f"Measured {name} matmul throughput (best of {repeats}, each repeat >= 0.2 s):", "",
                  "| M x K x N | GFLOP/s (wall) | GFLOP per CPU-second | cpu/wall |", "|---|---:|---:|---:|"]
        for result in peak.results:
            m, k, n = result.shape
            lines.append(f"| {m} x {k} x {n} | {result.flops_per_s / 1e9:.0f} | {result.flops_per_cpu_s / 1e9:.0f} "
                         f"| {result.load:.2f} |")
        shape = " x ".join(map(str, peak.best.shape))
        lines += ["", (f"{name} peaks used below: **{peak.best.flops_per_s / 1e9:.0f} GFLOP/s** of wall time "
                       f"({shape}) and **{peak.per_cpu_s / 1e9:.0f} GFLOP per CPU-second**.")]
    lines += ["", ("'% of peak' columns divide the model's useful FLOPs per wall second by the first peak; "
                   "'(cpu)' columns use FLOPs per CPU-second of this process and the second peak, which other "
                   "processes' load on a shared machine disturbs far less."), ""]
    return lines


def runs_table(runs: list[Run], peaks: dict[str, MatmulPeak], title: str, reference: Run | None = None,
               compare_codes: bool = True) -> list[str]:
    """A markdown table of runs; with ``reference``, speed-up (and, if ``compare_codes``, identical-codes) columns.

    The parts are in CPU seconds on a CPU (what each part cost this process, however loaded the
    machine) and in wall seconds on a GPU.
    """
    head = ("| run | steps | latency s | cpu/wall | CPU s | RTF | conditioner | transformer | sampling+masking "
            "| codec | transformer % of loop | GFLOP | loop % of peak | loop % of peak (cpu) | peak mem GiB (+gen) |")
    rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if reference is not None:
        head, rule = head + " loop speed-up | (cpu) |", rule + "---:|---:|"
        if compare_codes:
            head, rule = head + " same codes |", rule + "---|"
    lines = [f"## {title}", "", head, rule]
    for run in runs:
        peak = peaks.get(run.precision, peaks["fp32"])
        wall, cpu = peak.best.flops_per_s, peak.per_cpu_s
        part = run.part_seconds
        row = (f"| {run.label} | {','.join(map(str, run.steps))} | {run.total.wall:.2f} | {run.total.load:.2f} "
               f"| {run.total.cpu:.2f} | {run.rtf:.3f} | {part(run.conditioner):.2f} | {part(run.transformer):.2f} "
               f"| {part(run.loop) - part(run.transformer):.2f} | {part(run.codec):.2f} "
               f"| {100 * part(run.transformer) / part(run.loop):.1f} | {run.flops / 1e9:.0f} "
               f"| {100 * run.flops / run.loop.wall / wall:.1f} | {100 * run.flops / run.loop.cpu / cpu:.1f} "
               f"| {run.peak_bytes / GIB:.2f} (+{run.added_bytes / GIB:.2f}) |")
        if reference is not None:
            row += f" {reference.loop.wall / run.loop.wall:.2f}x | {reference.loop.cpu / run.loop.cpu:.2f}x |"
            row += f" {same_codes(run, reference)} |" if compare_codes else ""
        lines.append(row)
    return lines + [""]


def same_codes(run: Run, reference: Run) -> str:
    """'yes', or 'no' with the share of tokens equal to the reference's (its first rows, if the batch differs)."""
    rows = min(run.codes.shape[0], reference.codes.shape[0])
    ours, theirs = run.codes[:rows], reference.codes[:rows]
    if ours.shape != theirs.shape:
        return "no"
    if torch.equal(ours, theirs) and run.codes.shape == reference.codes.shape:
        return "yes"
    return f"{100 * (ours == theirs).float().mean().item():.1f}% equal"


def to_json(run: Run) -> dict:
    """A run as plain data."""
    return {"label": run.label, "size": run.size, "batch": run.batch, "steps": run.steps, "precision": run.precision,
            "seconds_of_audio": run.seconds_of_audio, "latency_s": run.total.wall, "cpu_s": run.total.cpu,
            "rtf": run.rtf, "conditioner_s": run.conditioner.wall, "transformer_s": run.transformer.wall,
            "codec_s": run.codec.wall, "loop_s": run.loop.wall, "conditioner_cpu_s": run.conditioner.cpu,
            "transformer_cpu_s": run.transformer.cpu, "loop_cpu_s": run.loop.cpu, "codec_cpu_s": run.codec.cpu,
            "peak_bytes": run.peak_bytes, "added_bytes": run.added_bytes, "flops": run.flops}


# -------------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` picks the CPU README settings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true",
                        help="CPU README table: tiny at batch 1/4/16 and small at batch 1, steps 20,10,10,10; "
                             "options compared on small, batch 1, steps 2,1,1,1")
    parser.add_argument("--sizes", default="tiny,small,medium", help="comma list of " + ", ".join(SIZES))
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--steps", default="20,10,10,10", help="decoding steps per codebook")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of audio")
    parser.add_argument("--sampler", default="top_p", help="sampler of the main table (top_p is MAGNeT's)")
    parser.add_argument("--compare-size", default="small")
    parser.add_argument("--compare-batch", type=int, default=1)
    parser.add_argument("--compare-steps", default="20,10,10,10")
    parser.add_argument("--no-compare", action="store_true", help="skip the options tables")
    parser.add_argument("--no-sampling", action="store_true", help="skip the sampling table")
    parser.add_argument("--sampling-size", default="tiny", help="size of the sampling table")
    parser.add_argument("--sampling-batch", type=int, default=1, help="batch of the sampling table")
    parser.add_argument("--no-main", action="store_true", help="skip the sizes x batches table")
    parser.add_argument("--no-precision", action="store_true", help="skip the decode.precision table")
    parser.add_argument("--precisions", default=None,
                        help="comma list of decode.precision rows (default: float32,bfloat16,int8 on CPU, "
                             "float32,bfloat16,float16 on CUDA)")
    parser.add_argument("--precision-batches", default="1", help="batch sizes of the precision table")
    parser.add_argument("--precision-compile", action="store_true",
                        help="each precision also with torch.compile (slow to compile on CPU)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds for the precision table; the rows after it is spent are skipped")
    parser.add_argument("--curve", action="store_true", help="clips/s against batch size (default options)")
    parser.add_argument("--curve-size", default="tiny", help="size of the batch-throughput curve")
    parser.add_argument("--curve-batches", default="1,2,4,8,16,32", help="batch sizes of the curve")
    parser.add_argument("--compile", action="store_true", help="also compare torch.compile on CPU (slow to compile)")
    parser.add_argument("--variants", default=None,
                        help="comma list of option rows to run (labels as printed; 'cfg 1' for the CFG pair)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row; the fastest is reported")
    parser.add_argument("--matmul-repeats", type=int, default=5, help="timed repeats per matmul shape")
    parser.add_argument("--peak-squares", default="1024,2048,4096", help="square GEMM sizes of the matmul peak")
    parser.add_argument("--peak-size", default="small", help="the size whose GEMM shapes join the matmul peak")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="call magnetkit.engine.keep_freed_memory() first (glibc keeps freed memory; CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write every run to this JSON file")
    args = parser.parse_args(argv)
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",")]

    args.sizes = args.sizes.split(",")
    args.batches, args.steps, args.compare_steps = ints(args.batches), ints(args.steps), ints(args.compare_steps)
    args.variants = None if args.variants is None else args.variants.split(",")
    args.precision_batches, args.curve_batches = ints(args.precision_batches), ints(args.curve_batches)
    args.peak_squares = tuple(ints(args.peak_squares))
    default_precisions = "float32,bfloat16,float16" if args.device.startswith("cuda") else "float32,bfloat16,int8"
    args.precisions = (args.precisions or default_precisions).split(",")
    args.batches_of = {}
    if args.quick:
        args.sizes, args.batches_of = ["tiny", "small"], {"tiny": [1, 4, 16], "small": [1]}
        args.compare_size, args.compare_batch, args.compare_steps = "small", 1, [2, 1, 1, 1]
    unknown = [name for name in args.sizes + [args.compare_size, args.sampling_size, args.curve_size, args.peak_size]
               if name not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {', '.join(unknown)}; choose from {', '.join(SIZES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print markdown tables on stdout (progress on stderr)."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_freed_memory:
        keep_freed_memory()
    device = torch.device(args.device)
    print("measuring matmul throughput ...", file=sys.stderr, flush=True)
    shapes = model_gemm_shapes(SIZES[args.peak_size].model, 2 * 498)
    dtypes = {"fp32": torch.float32}
    # Low-precision rows are set against their own precision's peak (int8 rows: against fp32's).
    if not args.no_precision and "bfloat16" in args.precisions:
        dtypes["bfloat16"] = torch.bfloat16
    if device.type == "cuda":
        dtypes.update(bfloat16=torch.bfloat16, float16=torch.float16)
    peaks = {name: matmul_peak(device, dtype, shapes, args.matmul_repeats, args.peak_squares)
             for name, dtype in dtypes.items()}
    lines: list[str] = []
    parameters: dict[str, int] = {}
    runs = [] if args.no_main else main_table(args, device, parameters)
    if runs:
        lines += runs_table(runs, peaks, f"Generation ({args.sampler} sampling, default options)")
    sampling = [] if args.no_sampling else sampling_table(args, device)
    if sampling:
        setting = f"{args.sampling_size}, batch {args.sampling_batch}, steps {','.join(map(str, args.steps))}"
        lines += runs_table(sampling, peaks, f"Sampling ({setting})", reference=sampling[0], compare_codes=False)
    precision = [] if args.no_precision else precision_table(args, device, parameters)
    if precision:
        setting = (f"{args.compare_size}, greedy, steps {','.join(map(str, args.compare_steps))}; "
                   "'% of peak' against each precision's own matmul peak, int8 against fp32's")
        lines += runs_table(precision, peaks, f"Precision ({setting})", reference=precision[0])
    if args.curve:
        lines += batch_curve(args, device)
    compare: list[Run] = []
    if not args.no_compare:
        compare, unit = options_tables(args, device, parameters)
        setting = (f"{args.compare_size}, batch {args.compare_batch}, greedy, "
                   f"steps {','.join(map(str, args.compare_steps))}")
        if compare:
            lines += runs_table(compare, peaks, f"Speed options on/off ({setting})", reference=compare[0])
        if unit:
            lines += runs_table(unit, peaks, f"CFG coefficient 1 ({setting})", reference=unit[0])
        compare += unit
    # Measured again at the end, keeping each shape's best: a peak taken while other jobs held the
    # cores would flatter every '% of peak' above.
    print("measuring matmul throughput again ...", file=sys.stderr, flush=True)
    for name, dtype in dtypes.items():
        peaks[name] = best_peak(peaks[name], matmul_peak(device, dtype, shapes, args.matmul_repeats, args.peak_squares))
    lines = machine_section(device, peaks, torch.get_num_threads(), args.matmul_repeats) + lines
    lines += ["## Systems", ""] + [f"- **{name}**: {SIZES[name].note}; {count / 1e6:.1f}M transformer parameters"
                                   for name, count in parameters.items()]
    lines += [(f"- prompt: \"{PROMPT}\"; {args.duration:g} s per clip; classifier-free guidance 10 -> 1 "
               "(the batch runs 2B rows); audiocraft's defaults otherwise"), ""]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"peak_flops": {name: peak.best.flops_per_s for name, peak in peaks.items()},
                       "peak_flops_per_cpu_s": peaks["fp32"].per_cpu_s, "threads": torch.get_num_threads(),
                       "runs": [to_json(r) for r in runs], "sampling": [to_json(r) for r in sampling],
                       "options": [to_json(r) for r in compare],
                       "precision": [to_json(r) for r in precision]}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
