"""Build hook: ship the top-level ``recipes/`` folder inside the wheel as ``magnetkit/recipes``.

Everything else is declared in pyproject.toml. ``recipes/`` stays at the top of the repository
(the product's layout) but is not a package, so setuptools' package discovery cannot map it;
this copies it next to the package at build time, where `magnetkit.recipe.RECIPES_DIR` finds it
in an installed wheel. A checkout (editable install) reads the top-level folder directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RECIPES = Path(__file__).resolve().parent / "recipes"


class BuildPyWithRecipes(build_py):
    """``build_py`` that also copies ``recipes/*.yaml`` to ``<build>/magnetkit/recipes/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's recipes/ in place
            return
        target = Path(self.build_lib) / "magnetkit" / "recipes"
        target.mkdir(parents=True, exist_ok=True)
        recipes = sorted(RECIPES.glob("*.yaml"))
        if not recipes:
            raise SystemExit(f"error: no recipes found in {RECIPES}: the wheel would ship none")
        for recipe in recipes:
            shutil.copy2(recipe, target / recipe.name)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """Declare the copied recipes too, so installers record them."""
        target = Path(self.build_lib) / "magnetkit" / "recipes"
        return super().get_outputs(include_bytecode) + [str(target / p.name) for p in sorted(RECIPES.glob("*.yaml"))]


setup(cmdclass={"build_py": BuildPyWithRecipes})
