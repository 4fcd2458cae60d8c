"""The CLI: listings, validation errors in recipe terms, exit codes, no tracebacks."""

import json
import subprocess
import sys

from magnetkit.cli import main
from magnetkit.recipe import RECIPES_DIR, load_recipe


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "magnetkit.cli", *args], capture_output=True, text=True, env=env)


def test_plugins_lists_builtins_with_versions_and_hooks(capsys):
    assert main(["plugins", "--json"]) == 0
    infos = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert {"schedulers", "samplers", "t5", "encodec"} <= set(infos)
    assert infos["schedulers"]["version"] and "register_masking_schedulers" in infos["schedulers"]["hooks"]


def test_components_by_kind(capsys):
    assert main(["components", "--kind", "sampler"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[1] for line in lines}
    assert {"top_p", "top_k", "greedy"} <= names
    assert all(line.split()[0] == "sampler" for line in lines)
    # The built-ins come from the samplers plugin (others may be installed, e.g. examples/magnetkit-minp).
    assert all(line.split()[2] == "samplers" for line in lines if line.split()[1] in {"top_p", "top_k", "greedy"})


def test_recipes_lists_shipped_with_purpose(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "magnet-small-10secs" in out and "official checkpoint" in out


def test_every_shipped_recipe_validates_and_starts_with_purpose_and_command():
    recipes = sorted(RECIPES_DIR.glob("*.yaml"))
    assert len(recipes) >= 6
    for path in recipes:
        lines = path.read_text().splitlines()
        assert lines[0].startswith("# "), f"{path.name}: first line must be a comment saying its purpose"
        assert any("magnetkit " in line for line in lines if line.startswith("#")), f"{path.name}: no command"
        load_recipe(path)


def test_validate_reports_both_mistakes_and_exits_2():
    result = run("validate", "magnet-small-10secs", "scheduler.name=no_such_scheduler", "sampler.name=top_p",
                 "sampler.top_p=1.5")
    assert result.returncode == 2
    assert "scheduler.name: unknown scheduler 'no_such_scheduler'" in result.stderr
    assert "sampler.top_p:" in result.stderr and "1" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_ok_and_show(capsys):
    assert main(["validate", "magnet-small-30secs", "--show"]) == 0
    out = capsys.readouterr().out
    assert "decoding_steps:\n  - 60" in out and "top_p: 0.9" in out


def test_usage_errors_exit_2_without_traceback():
    result = run("validate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = run("validate", "no-such-recipe")
    assert result.returncode == 2 and result.stderr.startswith("error: no recipe") and "Traceback" not in result.stderr


def test_help_has_examples():
    for command in ("plugins", "components", "recipes", "validate"):
        result = run(command, "--help")
        assert result.returncode == 0 and "examples:" in result.stdout
