"""The plugin's CLI commands: ``fit-codec`` and ``codec-fidelity``."""

from __future__ import annotations

import argparse
import json

from magnetkit import UsageError, add_command
from magnetkit_speccodec.config import FitConfig

EXAMPLES = {
    "fit-codec": "magnetkit fit-codec data/synth-train out/speccodec\n"
                 "  magnetkit fit-codec my/manifest.jsonl out/speccodec --cardinality 256 --eval-clips 0",
    "codec-fidelity": "magnetkit codec-fidelity\n"
                      "  magnetkit codec-fidelity speccodec model=out/speccodec --clips 100\n"
                      "  magnetkit codec-fidelity encodec model=facebook/encodec_32khz --json",
}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fit-codec`` and ``codec-fidelity``."""
    from magnetkit_synth.dataset import SPLITS

    defaults = FitConfig()
    p = add_command(subparsers, "fit-codec", "fit a speccodec (k-means RVQ over STFT features) on audio files",
                    run_fit_codec, EXAMPLES["fit-codec"])
    p.add_argument("source", help="manifest.jsonl, a folder holding one, or a folder of audio files")
    p.add_argument("out", help="folder to write speccodec.json + speccodec.safetensors into")
    p.add_argument("--cardinality", type=int, default=defaults.params.cardinality, help="codes per codebook")
    p.add_argument("--shape-levels", type=int, default=defaults.params.shape_levels,
                   help="residual shape codebooks (the gain codebook comes on top)")
    p.add_argument("--tokens-per-clip", type=int, default=defaults.tokens_per_clip)
    p.add_argument("--iters", type=int, default=defaults.kmeans_iters, help="k-means iterations per codebook")
    p.add_argument("--max-clips", type=int, default=defaults.max_clips)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    p.add_argument("--eval-clips", type=int, default=60,
                   help="held-out synthetic clips to measure fidelity on after fitting (0 = skip)")

    p = add_command(subparsers, "codec-fidelity",
                    "measure a codec's pitch, onset and attribute fidelity on synthetic clips", run_codec_fidelity,
                    EXAMPLES["codec-fidelity"])
    p.add_argument("codec", nargs="?", default="speccodec", help="registered codec name (default speccodec)")
    p.add_argument("params", nargs="*", help="codec parameters as key=value, e.g. model=out/speccodec")
    p.add_argument("--clips", type=int, default=60)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--split", choices=list(SPLITS), default="heldout")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run_fit_codec(args: argparse.Namespace) -> int:
    """Fit, save, and report fidelity on held-out clips."""
    import torch
    from pydantic import ValidationError

    from magnetkit_synth.dataset import iter_clips
    from magnetkit_synth.fidelity import codec_fidelity
    from magnetkit_speccodec.fit import fit_codec

    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    try:
        config = FitConfig(params={"cardinality": args.cardinality, "shape_levels": args.shape_levels},
                           tokens_per_clip=args.tokens_per_clip, kmeans_iters=args.iters,
                           max_clips=args.max_clips, seed=args.seed)
    except ValidationError as exc:
        raise UsageError(_one_line(exc)) from None
    codec = fit_codec(args.source, args.out, config, progress=print)
    if args.eval_clips > 0:
        report = codec_fidelity(codec, iter_clips(args.eval_clips, seed=1, split="heldout"))
        print(f"fidelity on {args.eval_clips} held-out clips (seed 1):")
        for line in report.lines():
            print(f"  {line}")
    return 0


def run_codec_fidelity(args: argparse.Namespace) -> int:
    """Build the codec from the registry and print its fidelity report."""
    import torch
    import yaml
    from pydantic import ValidationError

    from magnetkit import get_registry
    from magnetkit_synth.dataset import iter_clips
    from magnetkit_synth.fidelity import codec_fidelity

    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    params = {}
    for item in args.params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"codec parameter {item!r} is not key=value")
        params[key] = yaml.safe_load(value)
    spec = get_registry().get("codec", args.codec)
    try:
        codec = spec.build(params)
    except ValidationError as exc:
        raise UsageError(f"codec {args.codec}: {_one_line(exc)}") from None
    report = codec_fidelity(codec, iter_clips(args.clips, seed=args.seed, split=args.split))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"{args.codec} on {args.clips} {args.split} clips (seed {args.seed}):")
        for line in report.lines():
            print(f"  {line}")
    return 0


def _one_line(exc) -> str:
    errors = exc.errors()
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
