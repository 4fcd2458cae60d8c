"""The plugin's CLI command: ``synth-data``."""

from __future__ import annotations

import argparse

from magnetkit import add_command

EXAMPLES = {
    "judge-accuracy": "magnetkit judge-accuracy\n"
                      "  magnetkit judge-accuracy --clips 300 --split heldout --lookalikes 30 --codec speccodec",
    "synth-data": "magnetkit synth-data data/synth-train --clips 1000 --split train\n"
                  "  magnetkit synth-data data/synth-heldout --clips 100 --split heldout --seed 1",
}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``synth-data`` and ``judge-accuracy``."""
    from magnetkit_synth.dataset import ARPEGGIOS, KITS, SPLITS, TIMINGS

    p = add_command(subparsers, "synth-data", "write procedural captioned clips (WAV + manifest.jsonl)", run_synth_data,
                    EXAMPLES["synth-data"])
    p.add_argument("out", help="output folder")
    p.add_argument("--clips", type=int, default=1000, help="number of clips (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--split", choices=list(SPLITS), default="train",
                   help="train/valid draw the training attribute combinations, heldout only the held-out ones")
    p.add_argument("--omit-attributes", type=float, default=0.0, metavar="P",
                   help="probability that a caption leaves out each of its waveform, register and tempo words "
                        "(caption augmentation; default 0: every caption names every attribute)")
    p.add_argument("--augment-captions", type=float, default=0.0, metavar="P",
                   help="probability that a caption is drawn from the wide vocabulary (more synonyms and word "
                        "orders, partial descriptions); default 0")
    p.add_argument("--timing", choices=TIMINGS, default="free",
                   help="free: intervals within each tempo's range, clips 2-4 s (default); grid: one interval "
                        "per tempo word (slow 0.4 s, fast 0.16 s), every clip 3 s with notes to its end")
    p.add_argument("--arpeggio", choices=ARPEGGIOS, default="varied",
                   help="arpeggio pitches: varied (random root, major or minor, up/down/up-and-back; default), "
                        "ascending (random root, major triad upwards) or fixed (one major triad per register)")
    p.add_argument("--kit", choices=KITS, default="varied",
                   help="drum sounds: varied (every hit's noise, decay and level drawn, one of two bars; default) "
                        "or fixed (one hit per voice and register, one bar)")

    add_judge_command(subparsers)


def run_synth_data(args: argparse.Namespace) -> int:
    """Write the clips and print where the manifest is."""
    from magnetkit_synth.dataset import write_dataset

    manifest = write_dataset(args.out, args.clips, args.seed, args.split, omit_attributes=args.omit_attributes,
                              augment_captions=args.augment_captions, timing=args.timing,
                              arpeggio=args.arpeggio, kit=args.kit)
    print(f"{args.clips} {args.split} clips (seed {args.seed}): {manifest}")
    return 0


def add_judge_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``judge-accuracy``."""
    from magnetkit_synth.dataset import ARPEGGIOS, KITS, SPLITS, TIMINGS

    p = add_command(subparsers, "judge-accuracy", "measure the signal-processing judge against the generator's "
                    "truth: clean clips, after a codec round trip, and adversarial look-alikes", run_judge_accuracy,
                    EXAMPLES["judge-accuracy"])
    p.add_argument("--clips", type=int, default=100, help="dataset clips to judge (default 100)")
    p.add_argument("--split", choices=list(SPLITS), default="heldout")
    p.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    p.add_argument("--timing", choices=TIMINGS, default="free", help="clip timing (see synth-data; default free)")
    p.add_argument("--arpeggio", choices=ARPEGGIOS, default="varied",
                   help="arpeggio pitches (see synth-data; default varied)")
    p.add_argument("--kit", choices=KITS, default="varied", help="drum sounds (see synth-data; default varied)")
    p.add_argument("--codec", help="registered codec to round-trip the clips through as well, e.g. speccodec")
    p.add_argument("--lookalikes", type=int, default=20, help="adversarial clips per kind (default 20; 0 = skip)")
    p.add_argument("--json", help="also write the results to this JSON file")


def run_judge_accuracy(args: argparse.Namespace) -> int:
    """Judge clean (and round-tripped) dataset clips and the look-alikes; print one table each."""
    import json
    from pathlib import Path

    import torch

    from magnetkit import UsageError, get_registry
    from magnetkit_synth.analysis import attribute_accuracy
    from magnetkit_synth.fidelity import round_trip
    from magnetkit_synth.lookalikes import lookalike_accuracy

    if args.clips <= 0 or args.lookalikes < 0:
        raise UsageError("--clips must be positive and --lookalikes at least 0")
    if args.json and not Path(args.json).parent.is_dir():
        raise UsageError(f"--json: folder {Path(args.json).parent} does not exist")
    torch.set_num_threads(1)  # small tensors; a second thread only waits on a shared machine
    style = {"timing": args.timing, "arpeggio": args.arpeggio, "kit": args.kit}
    clean = attribute_accuracy(args.clips, args.seed, args.split, **style)
    results: dict[str, dict] = {"clean": clean}
    if args.codec:
        codec = get_registry().get("codec", args.codec).build({})
        results[f"after {args.codec}"] = attribute_accuracy(args.clips, args.seed, args.split,
                                                            transform=lambda audio: round_trip(codec, audio)[0],
                                                            **style)
    print(f"judge vs the generator's truth, {args.clips} {args.split} clips (seed {args.seed}, {args.timing} timing, "
          f"{args.arpeggio} arpeggios, {args.kit} kit):")
    names = list(next(iter(results.values())))
    print("attribute".ljust(13) + "".join(column.rjust(18) for column in results))
    for name in names:
        print(name.ljust(13) + "".join(f"{results[c][name]:.1%}".rjust(18) for c in results))
    if args.lookalikes:
        looks = lookalike_accuracy(args.lookalikes, seed=args.seed)
        results["lookalikes"] = looks
        print(f"\nadversarial look-alikes ({args.lookalikes} per kind), share judged right:")
        print("kind".ljust(30) + "judge".rjust(10) + "previous judge".rjust(17))
        for kind, shares in looks.items():
            print(kind.ljust(30) + f"{shares['judge']:.0%}".rjust(10) + f"{shares['previous judge']:.0%}".rjust(17))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0
