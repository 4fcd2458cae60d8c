"""``magnetkit eval``: score generated audio against reference audio (FAD, KAD, CLAP score, KL)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  magnetkit eval data/reference out/generated                       (mel embedder: fad, kad)
  magnetkit eval data/reference out/generated --out report.json --per-clip clips.csv
  magnetkit eval data/reference out/generated --embedder clap --metrics fad,kad,clap
  magnetkit eval data/reference out/generated --embedder vggish --metrics fad --device cuda
  magnetkit eval data/reference out/generated --metrics kl --kl-model MIT/ast-finetuned-audioset-10-10-0.4593

Folders are searched recursively for wav, flac, ogg and mp3 files. Prompts for the clap metric
come from --prompts FILE (one per line, in sorted file order) or GENERATED/manifest.jsonl. kl
pairs files with the same relative path in both folders. Reference embeddings are cached
(--cache-dir, default ~/.cache/magnetkit/embeddings) by file content and embedder settings.
Embedders: `magnetkit components --kind embedder`.
"""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``eval``."""
    help_text = "score generated audio against reference audio (FAD, KAD, CLAP score, KL)"
    p = subparsers.add_parser("eval", help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="folder of reference audio")
    p.add_argument("generated", help="folder of generated audio")
    p.add_argument("--embedder", default="mel", help="embedder for fad and kad (default: mel)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="an embedder parameter, e.g. --param model=laion/larger_clap_music (repeatable)")
    p.add_argument("--metrics", default="fad,kad", help="comma-separated: fad, kad, clap, kl (default: fad,kad)")
    p.add_argument("--prompts", help="text file, one prompt per generated file (clap metric)")
    p.add_argument("--clap-model", help="hub id or folder of the CLAP model for the clap metric")
    p.add_argument("--kl-model", help="hub id or folder of the AST classifier for the kl metric")
    p.add_argument("--out", help="write the report as JSON here")
    p.add_argument("--save-embeddings", metavar="DIR", help="write DIR/reference.npy and DIR/generated.npy")
    p.add_argument("--per-clip", metavar="CSV", help="one row per generated file (distance, clap score, kl)")
    p.add_argument("--cache-dir", help="reference embedding cache (default ~/.cache/magnetkit/embeddings)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the reference cache")
    p.add_argument("--batch-size", type=int, default=8, help="clips per embedder call (default 8)")
    p.add_argument("--device", help="e.g. cuda or cuda:1 (default: CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_eval)


def _params(items: list[str]) -> dict:
    import yaml

    from magnetkit.errors import UsageError

    params = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r} is not of the form KEY=VALUE")
        try:
            params[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            params[key.strip()] = raw
    return params


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate and print the metrics (and write the report)."""
    import json
    from pathlib import Path

    from magnetkit.errors import UsageError
    from magnetkit.evaluation import evaluate

    out = Path(args.out).expanduser() if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise UsageError(f"--out {args.out!r}: not a file path in an existing folder")
    report = evaluate(args.reference, args.generated, embedder=args.embedder, embedder_params=_params(args.param),
                      metrics=[m for m in args.metrics.split(",")], prompts=args.prompts, cache_dir=args.cache_dir,
                      device=args.device, progress=not args.quiet, save_embeddings=args.save_embeddings,
                      per_clip=args.per_clip, batch_size=args.batch_size, use_cache=not args.no_cache,
                      clap_params={"model": args.clap_model} if args.clap_model else None,
                      kl_params={"model": args.kl_model} if args.kl_model else None)
    data = report.to_dict()
    if out is not None:
        out.write_text(json.dumps(data, indent=2) + "\n")
    skipped = f", {report.skipped} skipped" if report.skipped else ""
    print(f"{report.embedder}: {report.n_reference} reference, {report.n_generated} generated clips{skipped}")
    for name, value in report.metrics.items():
        print(f"{name:<5} {value:.6g}")
    for item in report.skipped_files:
        print(f"skipped {item['set']}: {item['error']}")
    return 0
