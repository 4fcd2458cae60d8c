"""``magnetkit generate``: text (or an audio prompt) to audio files."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from magnetkit.errors import UsageError

EXAMPLES = """examples:
  magnetkit generate "a fast high square-wave arpeggio"            (the embedded default model)
  magnetkit generate magnet-small-10secs "happy rock" "sad piano" -o out/
  magnetkit generate facebook/magnet-small-10secs "lofi beat" generation.duration=5 --seed 1
  magnetkit generate path/to/checkpoint "calm piano" --prompt-audio intro.wav generation.duration=8
  magnetkit generate magnet-small-10secs "jazz" --negative "drums" sampler.temperature=2.5 --codes-out codes.npy
  magnetkit generate magnet-small-10secs-hybrid-musicgen "lofi beat" hybrid.prefix_seconds=1   (Hybrid-MAGNeT)
"""

# First segments of ``key=value`` overrides: a positional argument starting like this is one.
_OVERRIDE = re.compile(r"^(checkpoint|model|codec|conditioner|scheduler|sampler|rescorer|generation|decode|hybrid|data"
                       r"|train)"
                       r"(\.[\w]+)*=")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``generate``."""
    p = subparsers.add_parser("generate", help="generate audio from text", epilog=EXAMPLES,
                              description="Generate one audio file per text. SOURCE is a recipe, a magnetkit "
                                          "or audiocraft checkpoint folder, or a hub id; without it the "
                                          "embedded default model is used.",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("args", nargs="+", metavar="[SOURCE] TEXT... [key=value...]",
                   help="optional source, then texts, then recipe overrides")
    p.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    p.add_argument("--model", dest="source", help="the source, when it could be mistaken for a text")
    p.add_argument("--codes-out", help="also save the codes [B, K, T] to this .npy file")
    p.add_argument("--seed", type=int, help="seed for reproducible sampling")
    p.add_argument("--negative", help="a text to guide away from (negative prompt)")
    p.add_argument("--prompt-audio", help="an audio file to continue")
    p.add_argument("--format", choices=["wav", "flac"], default="wav", help="audio file format")
    p.add_argument("--strategy", choices=["loudness", "peak", "rms", "clip"], default="loudness",
                   help="output normalisation (as audiocraft's audio_write)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's; 1 is often fastest for "
                                               "small models on a busy machine)")
    p.set_defaults(func=run)


def split_args(args: list[str], source: str | None) -> tuple[str | None, list[str], list[str]]:
    """Positional arguments -> (source, texts, overrides)."""
    overrides = [a for a in args if _OVERRIDE.match(a)]
    rest = [a for a in args if not _OVERRIDE.match(a)]
    if source is None and rest and looks_like_source(rest[0]) and len(rest) > 1:
        source, rest = rest[0], rest[1:]
    elif source is None and len(rest) == 1 and looks_like_source(rest[0]) and not any(c.isspace() for c in rest[0]):
        raise UsageError(f"{rest[0]!r} looks like a model source but no text follows it; "
                         "give a text (quote it), or --model for the source")
    return source, rest, overrides


def looks_like_source(arg: str) -> bool:
    """A path, a shipped recipe name or a hub id (owner/name) — not a text."""
    from magnetkit.recipe import recipe_dirs

    if Path(arg).expanduser().exists():
        return True
    if any((d / f"{arg}.yaml").is_file() for d in recipe_dirs()):
        return True
    return re.fullmatch(r"[\w.-]+/[\w.-]+", arg) is not None


def run(args: argparse.Namespace) -> int:
    """Load, generate, write files; print elapsed time and real-time factor."""
    import numpy as np

    from magnetkit.audio import read_audio, write_audio
    from magnetkit.loading import load

    source, texts, overrides = split_args(args.args, args.source)
    if not texts:
        raise UsageError("give at least one text to generate from")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    pipeline = load(source, overrides, device=args.device)
    loaded = time.perf_counter() - started
    kwargs = dict(negative=args.negative, seed=args.seed, progress=False if args.quiet else None)
    if args.prompt_audio:
        if pipeline.recipe.hybrid is not None:
            raise UsageError("--prompt-audio continues audio with MAGNeT alone; it cannot be combined with a "
                             "recipe's hybrid section")
        wav, sr = read_audio(args.prompt_audio)
        result = pipeline.continue_audio(wav[None].expand(len(texts), -1, -1), sr, texts, **kwargs)
    elif pipeline.recipe.hybrid is not None:  # Hybrid-MAGNeT: an autoregressive prefix, then parallel
        from magnetkit.hybrid import HybridGenerator

        result = HybridGenerator.from_pipeline(pipeline).generate(texts, **kwargs)
        print(f"{result.prefix_frames} frames decoded autoregressively in {result.autoregressive_seconds:.2f} s")
    else:
        result = pipeline.generate(texts, **kwargs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, (text, audio) in enumerate(zip(texts, result.audio)):
        path = write_audio(out / f"{i:02d}_{slug(text)}.{args.format}", audio, result.sample_rate,
                           strategy=args.strategy)
        print(f"wrote {path}")
    if args.codes_out:
        Path(args.codes_out).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.codes_out, result.codes.numpy())
        print(f"wrote {args.codes_out} (codes {list(result.codes.shape)})")
    seconds = result.audio.shape[-1] / result.sample_rate
    print(f"generated {len(texts)} x {seconds:.2f} s in {result.seconds:.2f} s "
          f"(real-time factor {result.real_time_factor:.3f}; loading took {loaded:.2f} s)")
    return 0


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe short form of a text."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "audio"
