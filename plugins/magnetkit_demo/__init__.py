"""magnetkit built-in plugin: the embedded default model, and the commands that train and evaluate it.

The model is a small MAGNeT trained on the procedural clips of `magnetkit_synth`, coded by the
``speccodec`` codec and conditioned by a tiny caption T5; ``assets/`` holds it with its
``default-model.yaml``, which `magnetkit.load(None)` (and ``magnetkit generate "<text>"``) finds
through ``register_recipe_dirs``. ``magnetkit demo-train`` retrains it from scratch and
``magnetkit evaluate-adherence`` measures how well it follows prompts.
"""

from pathlib import Path

from magnetkit import hookimpl

ASSETS = Path(__file__).resolve().parent / "assets"

__all__ = ["ASSETS", "register_commands", "register_recipe_dirs"]


@hookimpl
def register_recipe_dirs() -> list[Path]:
    """The folder holding ``default-model.yaml`` and the assets it names."""
    return [ASSETS]


@hookimpl
def register_commands(subparsers) -> None:
    """Add ``demo-captions``, ``demo-train`` and ``evaluate-adherence``."""
    from magnetkit_demo.commands import add_commands

    add_commands(subparsers)
