"""An example third-party magnetkit plugin: the ``min_p`` sampler and a recipe that selects it.

It uses only magnetkit's public API (``from magnetkit import ...``; its tests also
``magnetkit.testing``). Registration imports the torch-free config only; the sampler's module
(torch) is imported when a recipe builds one, so ``magnetkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magnetkit import hookimpl

from magnetkit_minp.config import MinPConfig

__version__ = "0.1.0"
__all__ = ["MinPConfig", "build_min_p", "register_recipe_dirs", "register_samplers"]

RECIPES = Path(__file__).resolve().parent / "recipes"


def build_min_p(config: MinPConfig) -> Any:
    """Build a `MinPSampler` (its module, and torch, load here rather than at registration)."""
    from magnetkit_minp.sampler import MinPSampler

    return MinPSampler(config)


@hookimpl
def register_samplers(register) -> None:
    """Register the ``min_p`` sampler."""
    register("min_p", build_min_p, config=MinPConfig,
             description="min-p sampling: keep tokens at least min_p times as likely as the best (arXiv 2407.01082)")


@hookimpl
def register_recipe_dirs() -> list[Path]:
    """The folder holding ``magnet-small-10secs-min-p.yaml``."""
    return [RECIPES]
