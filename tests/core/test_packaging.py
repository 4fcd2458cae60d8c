"""The wheel is the product: it holds every recipe and asset, declares every import, and runs outside the tree."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import magnetkit

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Imported directly but installed by a declared dependency that pins it exactly.
PROVIDED_BY = {"pydantic_core": "pydantic"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    """Runtime dependencies and the optional feature extras (e.g. `web`: Gradio), not the test tools."""
    names = set()
    extras = PYPROJECT["project"].get("optional-dependencies", {})
    features = [r for name, reqs in extras.items() if name != "test" for r in reqs]
    for requirement in [*PYPROJECT["project"]["dependencies"], *features]:
        names.add(_normalise(re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)))
    return names


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, over the package and the built-in plugins."""
    first_party = {"magnetkit"} | {p.name for p in (ROOT / "plugins").iterdir() if p.is_dir()}
    found: dict[str, set[str]] = {}
    for path in [*(ROOT / "magnetkit").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in first_party and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_third_party_module_is_a_declared_dependency():
    declared = _declared()
    distributions = metadata.packages_distributions()
    missing = []
    for module, files in sorted(_third_party_imports().items()):
        owners = {_normalise(d) for d in distributions.get(module, [])}
        provided = PROVIDED_BY.get(module)
        if not (owners & declared) and not (provided and _normalise(provided) in declared):
            missing.append(f"{module} (imported by {sorted(files)[0]}; distribution {sorted(owners) or '?'})")
    assert not missing, "declare in pyproject's dependencies: " + "; ".join(missing)


def test_the_version_has_one_source():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "magnetkit.__version__"}
    assert metadata.version("magnetkit") == magnetkit.__version__
    assert f"## [{magnetkit.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_a_checkout_reads_its_top_level_recipes():
    from magnetkit.recipe import RECIPES_DIR

    assert RECIPES_DIR == ROOT / "recipes"


# ------------------------------------------------------------------------------ the wheel
def _package_files() -> list[str]:
    """Every file a wheel must hold (its path inside the wheel), from the source tree."""
    wanted = []
    for top, strip in ((ROOT / "magnetkit", ROOT), *((p, ROOT / "plugins") for p in (ROOT / "plugins").iterdir()
                                                    if (p / "__init__.py").is_file())):
        for path in top.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                wanted.append(path.relative_to(strip).as_posix())
    wanted += [f"magnetkit/recipes/{p.name}" for p in (ROOT / "recipes").glob("*.yaml")]
    return wanted


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the test environment's setuptools (the [test] extra) builds it offline.
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"pip wheel failed (is setuptools>=68 installed? pip install -e '.[test]'):\n{proc.stderr}"
    (found,) = out.glob("magnetkit-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_holds_every_recipe_asset_and_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(set(_package_files()) - names)
    assert not missing, f"{len(missing)} files missing from the wheel, e.g. {missing[:5]}"
    assert len([n for n in names if n.startswith("magnetkit/recipes/")]) == len(list((ROOT / "recipes").glob("*.yaml")))
    assert "magnetkit_demo/assets/model/model.safetensors" in names
    meta = zipfile.ZipFile(wheel).read(f"magnetkit-{magnetkit.__version__}.dist-info/METADATA").decode()
    assert f"Version: {magnetkit.__version__}" in meta and "Requires-Dist: scipy" in meta


@pytest.mark.slow
def test_the_unpacked_wheel_finds_recipes_and_the_default_model_by_name(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import json, sys\n"
        "import magnetkit, magnetkit.recipe as r\n"
        "from magnetkit.cli import main\n"
        "from magnetkit.loading import default_model_path\n"
        "codes = [main(['validate', name]) for name in ('magnet-small-10secs', 'train-tiny', 'default-model')]\n"
        "print(json.dumps({'package': magnetkit.__file__, 'recipes': str(r.RECIPES_DIR),\n"
        "                  'default': str(default_model_path()), 'codes': codes}))\n"
    )
    run = tmp_path / "elsewhere"
    run.mkdir()
    proc = subprocess.run([sys.executable, "-c", probe], cwd=run, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["codes"] == [0, 0, 0]
    for key in ("package", "recipes", "default"):
        assert found[key].startswith(str(site)), f"{key} came from {found[key]}, not the wheel"
