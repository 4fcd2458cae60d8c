"""A plugin outside this repository, installed only as distribution metadata + an entry point."""

import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN = '''
"""A third-party masking scheduler: gamma(t) = 1 - t**2."""
from pydantic import BaseModel, ConfigDict, Field
import magnetkit


class QuadraticConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    span_len: int = Field(3, ge=1)


def make_quadratic(config):
    """Quadratic mask-rate curve from a third-party package."""
    return config


@magnetkit.hookimpl
def register_masking_schedulers(register):
    register("quadratic", make_quadratic, config=QuadraticConfig)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "mk_quadratic.py").write_text(PLUGIN)
    dist = root / "mk_quadratic-0.3.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mk-quadratic\nVersion: 0.3.0\n")
    (dist / "entry_points.txt").write_text("[magnetkit]\nquadratic = mk_quadratic\n")
    recipe = root / "quad.yaml"
    recipe.write_text(textwrap.dedent("""\
        # test recipe selecting the third-party scheduler: magnetkit validate quad.yaml
        codec: {name: encodec}
        conditioner: {name: t5}
        scheduler: {name: quadratic, span_len: 2}
        """))
    return root


def run(site, *args, allow=None):
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("MAGNETKIT_PLUGINS", None)
    if allow is not None:
        env["MAGNETKIT_PLUGINS"] = allow
    return subprocess.run([sys.executable, "-m", "magnetkit.cli", *args], capture_output=True, text=True, env=env)


def test_third_party_scheduler_is_listed_and_selected_by_a_recipe(site):
    listed = run(site, "components", "--kind", "scheduler")
    assert listed.returncode == 0
    line = next(line for line in listed.stdout.splitlines() if " quadratic " in line)
    assert "quadratic 0.3.0" in line and "Quadratic mask-rate curve" in line
    plugins = run(site, "plugins")
    assert any(line.startswith("quadratic") and "mk-quadratic 0.3.0" in line for line in plugins.stdout.splitlines())
    ok = run(site, "validate", str(site / "quad.yaml"), "--show")
    assert ok.returncode == 0, ok.stderr
    assert "name: quadratic\n  span_len: 2" in ok.stdout
    bad = run(site, "validate", str(site / "quad.yaml"), "scheduler.span_len=0")
    assert bad.returncode == 2 and "scheduler.span_len: Input should be greater than or equal to 1" in bad.stderr


def test_allow_list_switches_it_off(site):
    off = run(site, "validate", str(site / "quad.yaml"), allow="encodec,t5,samplers,schedulers")
    assert off.returncode == 2 and "scheduler.name: unknown scheduler 'quadratic'" in off.stderr
    none = run(site, "plugins", allow="")
    assert none.returncode == 0 and "no plugins loaded" in none.stdout
