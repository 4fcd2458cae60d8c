"""The shipped rescoring and hybrid recipes validate offline and say what they are for and how to run them."""

from pathlib import Path

import pytest

from magnetkit.recipe import RECIPES_DIR, load_recipe

RESCORED = sorted(RECIPES_DIR.glob("*-rescored.yaml"))
HYBRID = sorted(RECIPES_DIR.glob("*-hybrid-*.yaml"))


def header(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]]


def test_every_10_second_music_model_has_a_rescored_variant_and_official_recipes_keep_it_off():
    for official in ("magnet-small-10secs", "magnet-medium-10secs"):
        assert load_recipe(official).rescorer is None
        assert (RECIPES_DIR / f"{official}-rescored.yaml") in RESCORED
    assert any(load_recipe(p).hybrid.autoregressive is None for p in HYBRID)  # a single-model training recipe
    assert any(load_recipe(p).hybrid.autoregressive is not None for p in HYBRID)  # a two-model one


@pytest.mark.parametrize("path", RESCORED + HYBRID, ids=lambda p: p.stem)
def test_recipe_validates_offline_and_documents_itself(path):
    recipe = load_recipe(path)  # no model is loaded: validation needs no network
    lines = header(path)
    assert len(lines) >= 3 and "paper §3." in lines[0]
    assert any("GPU" in line for line in lines[1:]), "the hardware it expects"
    command = next(line for line in lines if line.startswith("# Run: "))
    assert path.stem in command
    if path in RESCORED:
        assert recipe.rescorer.name == "musicgen" and 0 < recipe.rescorer.config.weight < 1
        assert "magnetkit generate" in command and recipe.hybrid is None
    elif recipe.hybrid.autoregressive is None:  # single-model Hybrid-MAGNeT: trained, then generated
        assert recipe.train is not None and "magnetkit train" in command and "magnetkit generate" in command
    else:
        assert recipe.hybrid.autoregressive.name == "musicgen" and "magnetkit generate" in command
        assert recipe.hybrid.autoregressive.config.model.startswith("facebook/musicgen-")
