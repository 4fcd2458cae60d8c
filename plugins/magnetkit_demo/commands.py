"""The plugin's CLI commands: ``demo-captions``, ``demo-train`` and ``evaluate-adherence``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from magnetkit import UsageError, add_command

EXAMPLES = {
    "demo-captions": "magnetkit demo-captions runs/demo/data/train runs/demo/caption-t5",
    "demo-train": "magnetkit demo-train runs/demo --install          (everything from scratch, ~55-75 min on 2 cores)\n"
                  "  magnetkit demo-train runs/demo train.steps=500       (a shorter run, not installed)",
    "evaluate-adherence": "magnetkit evaluate-adherence                       (the embedded model, held-out prompts)\n"
                          "  magnetkit evaluate-adherence runs/demo/train/model --prompts 140 --json adherence.json\n"
                          "  magnetkit evaluate-adherence --split valid --prompts 42   (combinations seen in training)\n"
                          "  magnetkit evaluate-adherence --paraphrase --seeds 4       (reworded prompts, 4 seeds)",
    "demo-figure": "magnetkit demo-figure docs/default-model-spectrograms.png",
}


def _parser(subparsers: argparse._SubParsersAction, name: str, help_text: str, func) -> argparse.ArgumentParser:
    return add_command(subparsers, name, help_text, func, EXAMPLES[name])


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the demo commands."""
    from magnetkit_synth.dataset import SPLITS

    from magnetkit_demo.config import CAPTION_LAYERS, DemoData

    p = _parser(subparsers, "demo-captions", "build the tiny caption T5 (tokenizer + random encoder) from a "
                "training manifest", run_demo_captions)
    p.add_argument("source", help="manifest.jsonl or a folder holding one (its captions give the vocabulary)")
    p.add_argument("out", help="folder to write the tokenizer and encoder into")
    p.add_argument("--seed", type=int, default=0, help="seed of the random encoder weights (default 0)")
    p.add_argument("--layers", type=int, default=CAPTION_LAYERS,
                   help=f"encoder layers (default {CAPTION_LAYERS}; 0: each word encodes alone, a bag of words)")
    p.add_argument("--no-synonyms", action="store_true",
                   help="only the captions' words: no synonyms from magnetkit_synth's VOCABULARY tied to them")

    defaults = DemoData()
    p = _parser(subparsers, "demo-train", "retrain the embedded demo model from scratch: synthetic data, caption "
                "encoder, then the demo-train recipe", run_demo_train)
    p.add_argument("out", help="working folder: data/, caption-t5/, tokens/ and train/ go here")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the demo-train recipe, e.g. train.steps=500")
    p.add_argument("--clips", type=int, default=defaults.train_clips, help="training clips to synthesise")
    p.add_argument("--valid-clips", type=int, default=defaults.valid_clips, help="validation clips to synthesise")
    p.add_argument("--seed", type=int, default=defaults.seed, help="dataset seed")
    p.add_argument("--omit-attributes", type=float, default=defaults.omit_attributes, metavar="P",
                   help="probability that a training caption leaves out each of its waveform, register and tempo "
                        f"words (default {defaults.omit_attributes})")
    p.add_argument("--augment-captions", type=float, default=defaults.augment_captions, metavar="P",
                   help="share of training captions drawn from the wide vocabulary: more synonyms and word orders, "
                        f"partial descriptions (default {defaults.augment_captions})")
    p.add_argument("--timing", choices=("free", "grid"), default=defaults.timing,
                   help="clip timing of magnetkit_synth: free (intervals within each tempo's range) or grid (one "
                        f"interval per tempo word, 3 s clips, notes to the end); default {defaults.timing}")
    p.add_argument("--arpeggio", choices=("varied", "ascending", "fixed"), default=defaults.arpeggio,
                   help="arpeggio pitches of magnetkit_synth: varied (random root, third and shape), ascending "
                        "(random root, major triad upwards) or fixed (one major triad per register); "
                        f"default {defaults.arpeggio}")
    p.add_argument("--kit", choices=("varied", "fixed"), default=defaults.kit,
                   help="drum sounds of magnetkit_synth: varied (every hit's noise, decay and level drawn) or "
                        f"fixed (one hit per voice and register, one bar); default {defaults.kit}")
    p.add_argument("--caption-layers", type=int, default=CAPTION_LAYERS,
                   help=f"layers of the random caption encoder (default {CAPTION_LAYERS}; 0: each word encodes alone)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--install", action="store_true",
                   help="copy the trained model, caption encoder and codec into the demo plugin's assets")

    p = _parser(subparsers, "evaluate-adherence", "measure prompt adherence with signal processing on held-out "
                "attribute combinations, against chance and the same model without guidance", run_evaluate)
    p.add_argument("source", nargs="?", help="model source (default: the embedded default model)")
    p.add_argument("overrides", nargs="*", help="key=value recipe overrides, e.g. sampler.temperature=2")
    p.add_argument("--prompts", type=int, default=70, help="number of prompts (default 70: 10 per held-out combination)")
    p.add_argument("--split", choices=list(SPLITS), default="heldout",
                   help="heldout: combinations never trained on (default); valid: training combinations")
    p.add_argument("--prompt-seed", type=int, default=1, help="dataset seed the captions are drawn with")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (the same for every column)")
    p.add_argument("--seeds", type=int, default=1,
                   help="average over this many sampling seeds, --seed to --seed + N - 1 (default 1)")
    p.add_argument("--paraphrase", action="store_true",
                   help="prompt with paraphrases no training caption uses (same attributes and real clips)")
    p.add_argument("--batch-size", type=int, default=10, help="clips generated together")
    p.add_argument("--no-baseline", action="store_true", help="skip the no-guidance (cfg 1) column")
    p.add_argument("--no-real", action="store_true", help="skip judging the dataset's real clips")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--json", help="also write the report to this JSON file")

    p = _parser(subparsers, "demo-figure", "write a PNG of spectrograms: what the default model plays for a few "
                "prompts, next to real clips (needs matplotlib)", run_demo_figure)
    p.add_argument("out", help="the .png to write")
    p.add_argument("source", nargs="?", help="model source (default: the embedded default model)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


def run_demo_captions(args: argparse.Namespace) -> int:
    """Write the caption encoder and say how many words it knows."""
    from magnetkit import read_items

    from magnetkit_demo.captions import INFO_FILE, build_caption_encoder

    if args.layers < 0:
        raise UsageError(f"--layers must be at least 0, got {args.layers}")
    captions = [item.caption for item in read_items(args.source) if item.caption]
    folder = build_caption_encoder(captions, args.out, seed=args.seed, num_layers=args.layers,
                                   with_synonyms=not args.no_synonyms)
    info = json.loads((Path(folder) / INFO_FILE).read_text())
    print(f"caption encoder ({len(info['words'])} words from {len(captions)} captions, "
          f"{len(info.get('synonyms', {}))} synonyms): {folder}")
    return 0


def run_demo_train(args: argparse.Namespace) -> int:
    """Data, caption encoder, training; then (with --install) copy the result into the plugin."""
    import torch

    from magnetkit_demo.training import DemoData, install, train_demo

    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if not 0 <= args.omit_attributes <= 1:
        raise UsageError(f"--omit-attributes must be in [0, 1], got {args.omit_attributes}")
    if not 0 <= args.augment_captions <= 1:
        raise UsageError(f"--augment-captions must be in [0, 1], got {args.augment_captions}")
    if args.caption_layers < 0:
        raise UsageError(f"--caption-layers must be at least 0, got {args.caption_layers}")
    data = DemoData(train_clips=args.clips, valid_clips=args.valid_clips, seed=args.seed,
                    omit_attributes=args.omit_attributes, augment_captions=args.augment_captions,
                    timing=args.timing, arpeggio=args.arpeggio, kit=args.kit)
    result = train_demo(args.out, data, args.overrides, progress=print, caption_layers=args.caption_layers)
    print(f"training steps took {result.train_seconds / 60:.1f} min (the run's log): {result.model}")
    if args.install:
        print(f"installed: {install(result)}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Load the model twice (guided and cfg 1), generate every prompt, judge, print the table."""
    import torch

    from magnetkit import load

    from magnetkit_demo.adherence import evaluate, mean_report, prompts

    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.json and Path(args.json).exists() and Path(args.json).is_dir():
        raise UsageError(f"--json: {args.json} is a folder")
    source, overrides = _source_and_overrides(args.source, args.overrides)
    chosen = prompts(args.prompts, args.split, args.prompt_seed, paraphrase=args.paraphrase)
    guided = load(source, overrides)
    gen = guided.recipe.generation
    pipelines = {f"model (cfg {gen.cfg_max:g}->{gen.cfg_min:g})": guided}
    if not args.no_baseline:
        pipelines["no guidance (cfg 1)"] = load(source, [*overrides, "generation.cfg_max=1", "generation.cfg_min=1"])
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        runs.append(evaluate(pipelines, chosen, seed=seed, batch_size=args.batch_size,
                             real_clips=not args.no_real and not runs,
                             progress=lambda message, seed=seed: print(f"  seed {seed}: {message}", flush=True)))
        if args.json:  # after every seed, so a long run that is stopped still leaves its finished seeds
            _write_json(args.json, {"split": args.split, "paraphrase": args.paraphrase, "prompts": len(chosen),
                                    "seeds_done": [r_seed for r_seed in range(args.seed, seed + 1)],
                                    "per_seed": [run.columns for run in runs]})
    report = mean_report(runs)
    combos = len({p.attributes for p in chosen})
    kind = "paraphrased " if args.paraphrase else ""
    seeds = f"mean of sampling seeds {args.seed}-{args.seed + args.seeds - 1}" if args.seeds > 1 else f"seed {args.seed}"
    print(f"\nprompt adherence on {len(chosen)} {kind}{args.split} prompts ({combos} attribute combinations), "
          f"{report.clip_seconds:.1f} s clips, {seeds}, judged by magnetkit_synth.analysis:")
    print(report.table())
    if args.seeds > 1:
        for name in pipelines:
            values = [run.columns[name]["all four"] for run in runs]
            print(f"{name}: all four {min(values):.1%} to {max(values):.1%} over the seeds")
    first = next(iter(pipelines))
    print(f"\nall four attributes right, per combination ({first}):")
    for attrs, count, share in sorted(report.per_combination(first), key=lambda item: item[0].key().__str__()):
        print(f"  {_combo(attrs):40s} {share:6.1%} of {count}")
    for name, seconds in report.seconds.items():
        print(f"{name}: {seconds / len(chosen):.2f} s per clip (batches of {args.batch_size}, mean over seeds)")
    if args.json:
        out = {"split": args.split, "paraphrase": args.paraphrase, "prompts": len(chosen),
               "seeds": list(range(args.seed, args.seed + args.seeds)), "columns": report.columns,
               "per_seed": [run.columns for run in runs],
               "seconds_per_clip": {k: v / len(chosen) for k, v in report.seconds.items()},
               "clip_seconds": report.clip_seconds}
        _write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


def run_demo_figure(args: argparse.Namespace) -> int:
    """Generate the figure's prompts and write the PNG."""
    import torch

    from magnetkit import load

    from magnetkit_demo.figure import spectrogram_figure

    torch.set_num_threads(1)
    if Path(args.out).suffix.lower() != ".png" or not Path(args.out).resolve().parent.is_dir():
        raise UsageError(f"{args.out}: give a .png path in an existing folder")
    print(f"wrote {spectrogram_figure(load(args.source), args.out, seed=args.seed)}")
    return 0


def _write_json(path: str, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def _source_and_overrides(source: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """A first positional that is an override (``key=value``) means no source was named."""
    if source is not None and "=" in source and not Path(source).exists():
        return None, [source, *overrides]
    return source, list(overrides)


def _combo(attrs) -> str:
    return " ".join(v for v in (attrs.tempo, attrs.register, attrs.waveform, attrs.pattern) if v)
