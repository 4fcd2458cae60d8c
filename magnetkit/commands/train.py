"""``magnetkit train`` and ``magnetkit prepare-data``: training runs and their token caches.

Both run unchanged as one process or under ``torchrun`` (one process per GPU, or per node
slot): ``torchrun --nproc-per-node 8 -m magnetkit.cli train RECIPE``.
"""

from __future__ import annotations

import argparse

EXAMPLES_TRAIN = """examples:
  magnetkit train train-tiny                                       (CPU, minutes)
  magnetkit train train-tiny train.steps=200 train.out_dir=runs/try data.train=my/manifest.jsonl
  magnetkit train train-magnet-small-10secs train.init_from=facebook/magnet-small-10secs train.lr=1e-5
  torchrun --nproc-per-node 8 -m magnetkit.cli train train-magnet-small-10secs
  torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
      -m magnetkit.cli train train-magnet-medium-30secs train.distributed=fsdp

The run resumes from the newest checkpoint in train.out_dir; the final model is train.out_dir/model,
which `magnetkit generate` loads. Keys: `magnetkit validate RECIPE --show`.
"""

EXAMPLES_PREPARE = """examples:
  magnetkit prepare-data train-tiny
  magnetkit prepare-data train-magnet-small-10secs data.train=music/train.jsonl data.cache=/data/tokens
  torchrun --nproc-per-node 8 -m magnetkit.cli prepare-data train-magnet-small-10secs

Encodes every audio file once with the recipe's codec into data.cache (default
train.out_dir/tokens); an interrupted run resumes where it stopped, and unreadable files are
skipped, counted and reported.
"""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``prepare-data``."""
    for name, help_text, examples, func in (
        ("train", "train or fine-tune a model from a recipe", EXAMPLES_TRAIN, run_train),
        ("prepare-data", "encode a recipe's training data into its token cache", EXAMPLES_PREPARE, run_prepare),
    ):
        p = subparsers.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                                  epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("recipe", help="training recipe (file or shipped name)"
                       + (", or a checkpoint folder to train further" if name == "train" else ""))
        p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=1e-4 data.train=x.jsonl")
        p.set_defaults(func=func)


def run_train(args: argparse.Namespace) -> int:
    """Train; the final model folder is printed by the loop."""
    from magnetkit.train.loop import train

    train(args.recipe, args.overrides)
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """Build (or complete) the token caches and report what they hold."""
    from magnetkit.recipe import load_recipe
    from magnetkit.train.build import cache_root, prepare_tokens, require_sections
    from magnetkit.train.data import describe
    from magnetkit.train.distributed import session

    recipe = load_recipe(args.recipe, args.overrides)  # validated without reading any weights
    require_sections(recipe, ("data", "train"), args.recipe)
    with session(recipe.train.device) as world:
        tokens = prepare_tokens(recipe, world, progress=recipe.train.progress)
        if world.is_main:
            for split, token_set in tokens.items():
                print(f"{split}: {describe(token_set)}")
                for skipped in token_set.skipped:
                    print(f"  skipped {skipped['path']}: {skipped['reason']}")
            print(f"token cache: {cache_root(recipe)}")
    return 0
