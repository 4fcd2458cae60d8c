"""``python -m magnetkit.hybrid SOURCE TEXT... [key=value...]``: hybrid generation from a recipe."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from magnetkit.errors import MagnetkitError

_OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.\w+)*=")


def main(argv: Sequence[str] | None = None) -> int:
    """Generate one file per text with a recipe's ``hybrid`` section; known errors print one line."""
    parser = argparse.ArgumentParser(prog="python -m magnetkit.hybrid", description=(
        "Hybrid-MAGNeT generation: the first seconds autoregressively, the rest in parallel (paper §3.4)."))
    parser.add_argument("source", help="a recipe with a hybrid section (file or shipped name), or a checkpoint")
    parser.add_argument("args", nargs="+", metavar="TEXT|key=value", help="texts, then recipe overrides")
    parser.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    parser.add_argument("--seed", type=int, help="seed for reproducible sampling")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except MagnetkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args: argparse.Namespace) -> int:
    from magnetkit.audio import write_audio
    from magnetkit.commands.generate import slug
    from magnetkit.errors import UsageError
    from magnetkit.hybrid.generate import load_hybrid

    overrides = [a for a in args.args if _OVERRIDE.match(a)]
    texts = [a for a in args.args if not _OVERRIDE.match(a)]
    if not texts:
        raise UsageError("give at least one text to generate from")
    hybrid = load_hybrid(args.source, overrides, device=args.device)
    result = hybrid.generate(texts, seed=args.seed, progress=False if args.quiet else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, (text, audio) in enumerate(zip(texts, result.audio)):
        print(f"wrote {write_audio(out / f'{i:02d}_{slug(text)}.wav', audio, result.sample_rate)}")
    seconds = result.audio.shape[-1] / result.sample_rate
    print(f"generated {len(texts)} x {seconds:.2f} s in {result.seconds:.2f} s ({result.prefix_frames} frames "
          f"autoregressively in {result.autoregressive_seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
