"""The light commands import no torch, transformers or numba (behaviour; the timings are in benchmarks/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from magnetkit.recipe import recipe_dirs

HEAVY = ["torch", "transformers", "numba"]

LIGHT_COMMANDS = [
    ["--help"],
    ["--version"],
    ["recipes"],
    ["components"],
    ["components", "--kind", "sampler", "--json"],
    ["plugins"],
    ["plugins", "--json"],
    ["generate", "--help"],
    ["train", "--help"],
    ["validate", "magnet-small-10secs", "sampler.top_p=0.8", "--show"],
    ["validate", "magnet-small-10secs", "sampler.top_p=1.5"],  # an error path too
]


def _heavy_after(argv_list: list[list[str]]) -> dict:
    """Run each command's code path in one fresh interpreter; return what it imported and the exit codes."""
    probe = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from magnetkit.cli import main
        codes = []
        for argv in {argv_list!r}:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    codes.append(main(argv))
                except SystemExit as exc:  # --help and --version exit through argparse
                    codes.append(exc.code)
        print(json.dumps({{"codes": codes, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_light_commands_import_no_torch():
    result = _heavy_after(LIGHT_COMMANDS)
    assert result["heavy"] == [], f"a light command imported {result['heavy']}; see `python -X importtime`"
    assert result["codes"][:-1] == [0] * (len(LIGHT_COMMANDS) - 1)
    assert result["codes"][-1] not in (0, None)  # the invalid override still fails


def test_validating_every_shipped_recipe_imports_no_torch():
    names = sorted({p.stem for folder in recipe_dirs() for p in folder.glob("*.yaml")})
    assert len(names) >= 20
    result = _heavy_after([["validate", name] for name in names])
    assert result["codes"] == [0] * len(names)
    assert result["heavy"] == []


@pytest.mark.parametrize("module", ["magnetkit", "magnetkit.recipe", "magnetkit.plugins", "magnetkit.registry"])
def test_core_modules_the_cli_needs_are_torch_free(module):
    code = f"import sys, {module}; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
