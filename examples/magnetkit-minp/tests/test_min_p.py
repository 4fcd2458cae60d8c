"""The example plugin, installed: discovered, selected by recipes, and passing magnetkit's sampler contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import magnetkit
from magnetkit.testing import check_sampler

try:
    from magnetkit_minp import MinPConfig, build_min_p
except ImportError:  # fail, never skip: CI must exercise the installed plugin
    pytest.fail("magnetkit-minp is not installed; install it with `pip install examples/magnetkit-minp` "
                "(from the magnetkit checkout) and rerun", pytrace=False)


def magnetkit_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the installed ``magnetkit`` command with this interpreter."""
    script = Path(sys.executable).with_name("magnetkit")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------ the contract
@pytest.mark.parametrize("params", [{}, {"min_p": 0.5, "anneal": False, "span_scoring": "prod"},
                                    {"stage_temperatures": [1.0, 0.05]}])
def test_passes_the_sampler_contract(params):
    check_sampler(build_min_p, MinPConfig(**params))


def test_min_p_one_keeps_only_the_most_probable_token():
    check_sampler(build_min_p, MinPConfig(min_p=1.0), deterministic=True)


def test_tokens_below_the_cut_are_never_drawn():
    # Probabilities 0.5, 0.46, 0.04 at temperature 1: min_p 0.1 cuts at 0.05, so token 2 never comes.
    logits = torch.tensor([0.5, 0.46, 0.04]).log().expand(1, 4000, 3).contiguous()
    sampler = build_min_p(MinPConfig(min_p=0.1, temperature=1.0, anneal=False))
    tokens, probs = sampler(logits, 0, 1, generator=torch.Generator().manual_seed(0))
    assert set(tokens.unique().tolist()) == {0, 1}
    assert torch.allclose(probs[tokens == 0], torch.tensor(0.5))


# ------------------------------------------------------------------ discovery and selection
def test_discovered_through_its_entry_point():
    listed = json.loads(magnetkit_cli("plugins", "--json").stdout)
    mine = [p for p in listed if p["name"] == "min_p"]
    assert mine and mine[0]["distribution"] == "magnetkit-minp" and "register_samplers" in mine[0]["hooks"]
    assert magnetkit.get_registry().get("sampler", "min_p").plugin == "min_p"


def test_its_recipe_validates_by_name():
    result = magnetkit_cli("validate", "magnet-small-10secs-min-p", "--show")
    assert result.returncode == 0, result.stderr
    assert "name: min_p" in result.stdout and "min_p: 0.1" in result.stdout


def test_a_bad_parameter_is_one_line_in_recipe_terms():
    result = magnetkit_cli("validate", "magnet-small-10secs-min-p", "sampler.min_p=2")
    assert result.returncode != 0
    assert "sampler.min_p" in result.stderr and "Traceback" not in result.stderr


def test_the_default_model_generates_with_it():
    torch.set_num_threads(1)
    overrides = ["sampler.name=min_p", "sampler.min_p=0.2", "generation.progress=false",
                 "generation.decoding_steps=[4,2,2,2]"]  # few steps: this checks the wiring, not the audio
    pipe = magnetkit.load(None, overrides)
    assert type(pipe.sampler).__name__ == "MinPSampler"
    out = pipe.generate("a slow low sine arpeggio", duration=0.5, seed=0)
    assert out.audio.shape[0] == 1 and out.audio.shape[-1] > 0 and torch.isfinite(out.audio).all()
