"""The plugin's CLI command: ``synth-data``."""

from __future__ import annotations

import argparse

from magnetkit import add_command

EXAMPLES = {
    "synth-data": "magnetkit synth-data data/synth-train --clips 1000 --split train\n"
                  "  magnetkit synth-data data/synth-heldout --clips 100 --split heldout --seed 1",
}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``synth-data``."""
    from magnetkit_synth.dataset import SPLITS

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


def run_synth_data(args: argparse.Namespace) -> int:
    """Write the clips and print where the manifest is."""
    from magnetkit_synth.dataset import write_dataset

    manifest = write_dataset(args.out, args.clips, args.seed, args.split, omit_attributes=args.omit_attributes)
    print(f"{args.clips} {args.split} clips (seed {args.seed}): {manifest}")
    return 0
