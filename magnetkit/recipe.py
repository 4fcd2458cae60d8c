"""YAML recipes: safe loading, command-line overrides and two-stage validation.

Stage 1 checks the recipe's structure and that every component name is registered; stage 2
checks each component's parameters against its own config model. Every problem is reported at
once, spelled in recipe terms (``sampler.top_p: ...``). Components are named by registry name
only: a recipe can never import code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from magnetkit.errors import ComponentNotFoundError, RecipeError
from magnetkit.hybrid.config import HybridConfig
from magnetkit.model.config import ModelConfig
from magnetkit.registry import KINDS, get_registry
from magnetkit.section import Component
from magnetkit.train.config import DataConfig, TrainConfig


def _shipped_recipes_dir() -> Path:
    """The shipped recipes: ``magnetkit/recipes`` in an installed wheel, else the checkout's ``recipes/``."""
    package = Path(__file__).resolve().parent
    installed = package / "recipes"  # setup.py copies recipes/ here when it builds the wheel
    return installed if installed.is_dir() else package.parent / "recipes"


RECIPES_DIR = _shipped_recipes_dir()


# ------------------------------------------------------------------------------ the schema
class GenerationConfig(BaseModel):
    """How to decode: the parts of generation that are not a component's own parameters."""

    model_config = ConfigDict(extra="forbid")

    duration: float = Field(10.0, gt=0, description="seconds of audio to generate")
    decoding_steps: list[int] = Field(default_factory=lambda: [20, 10, 10, 10],
                                      description="decoding steps for each codebook stage")
    cfg_max: float = Field(10.0, ge=0, description="guidance coefficient at mask rate 1 (start of a stage)")
    cfg_min: float = Field(1.0, ge=0, description="guidance coefficient at mask rate 0 (end of a stage)")
    seed: int | None = Field(None, description="seed of the sampling generator; null = random")
    progress: bool = Field(True, description="show a progress bar")
    window_overlap: float = Field(5.0, ge=0, description="seconds carried over between windows of long outputs")

    @field_validator("decoding_steps")
    @classmethod
    def _positive_steps(cls, steps: list[int]) -> list[int]:
        if not steps or any(s < 1 for s in steps):
            raise ValueError("every stage needs at least 1 decoding step")
        return steps


class Recipe(BaseModel):
    """A whole system: weights, model, components and generation settings."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = Field(None, description="weights: a magnetkit or audiocraft folder, or a hub id")
    model: ModelConfig | None = None
    codec: Component
    conditioner: Component
    scheduler: Component = Field(default_factory=lambda: Component(name="cosine"))
    sampler: Component = Field(default_factory=lambda: Component(name="top_p"))
    rescorer: Component | None = None
    embedder: Component | None = Field(None, description="evaluation embedder (`magnetkit eval`, sweeps); generation ignores it")
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    hybrid: HybridConfig | None = Field(None, description="Hybrid-MAGNeT generation and training (paper §3.4)")
    data: DataConfig | None = None
    train: TrainConfig | None = None

    def components(self) -> dict[str, Component]:
        """The component sections present, by kind."""
        return {kind: getattr(self, kind) for kind in KINDS if getattr(self, kind) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data: every component with its validated parameters."""
        data = self.model_dump(mode="json", exclude_none=True)
        for kind, comp in self.components().items():
            data[kind] = {"name": comp.name, **comp.config.model_dump(mode="json")}
        return data


# ------------------------------------------------------------------------------- loading
def recipe_dirs() -> list[Path]:
    """The shipped recipe folder, then the folders plugins add."""
    from magnetkit.plugins import load_plugins

    dirs = [RECIPES_DIR]
    for found in load_plugins().hook.register_recipe_dirs():
        dirs.extend(Path(d) for d in (found or []))
    return dirs


def find_recipe(source: str | Path) -> Path:
    """A recipe path, or the name of a shipped or plugin recipe (with or without ``.yaml``)."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    for folder in recipe_dirs():
        candidate = folder / f"{stem}.yaml"
        if candidate.is_file():
            return candidate
    raise RecipeError([f"no recipe file or shipped recipe named {str(source)!r} (see `magnetkit recipes`)"])


def read_yaml(path: Path) -> dict[str, Any]:
    """Safely load a YAML mapping; a syntax error is a RecipeError naming the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError([f"not valid YAML: {exc}".replace("\n", " ")], source=str(path)) from exc
    except OSError as exc:
        raise RecipeError([f"cannot read recipe: {exc.strerror}"], source=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(["a recipe must be a mapping of sections"], source=str(path))
    return data


def first_comment(path: Path) -> str:
    """The recipe's first comment line (its purpose)."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


# ----------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value); the value is read as YAML (lists allowed)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError([f"override {text!r} is not of the form key=value (e.g. sampler.top_p=0.8)"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a recipe mapping (a copy is returned).

    Changing a component's ``name`` drops the parameters the file gave the previous component
    unless the new one accepts them; parameters given on the command line are always kept.
    """
    data = copy.deepcopy(data)
    renamed: dict[str, set[str]] = {}  # kind -> parameters set by overrides
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise RecipeError([f"{'.'.join(keys[:depth + 1])}: is not a section, cannot set {'.'.join(keys)}"])
            node = child
        node[keys[-1]] = value
        if keys[0] in KINDS and len(keys) == 2:
            renamed.setdefault(keys[0], set())
            if keys[1] == "name":
                renamed[keys[0]].add("__renamed__")
            renamed[keys[0]].add(keys[1])
    for kind, given in renamed.items():
        if "__renamed__" in given and isinstance(data.get(kind), dict):
            data[kind] = _keep_accepted(kind, data[kind], given)
    return data


def _keep_accepted(kind: str, section: dict[str, Any], given: set[str]) -> dict[str, Any]:
    try:
        spec = get_registry().get(kind, str(section.get("name")))
    except ComponentNotFoundError:
        return {k: v for k, v in section.items() if k in given}
    fields = spec.config.model_fields
    return {k: v for k, v in section.items() if k == "name" or k in given or k in fields}


# ---------------------------------------------------------------------------- validation
def _where(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc]
    return ".".join(parts) or "recipe"


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for err in exc.errors():
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required"
        out.append(f"{_where(prefix, err['loc'])}: {msg}")
    return out


def validate_recipe(data: dict[str, Any], source: str | None = None) -> Recipe:
    """Validate a recipe mapping in two stages; raise one RecipeError with every problem.

    A section with a default component (scheduler, sampler) that gives parameters but no name,
    e.g. from the override ``sampler.temperature=2``, configures the default component.
    """
    problems: list[str] = []
    data = dict(data)
    for kind in ("scheduler", "sampler"):
        if isinstance(data.get(kind), dict) and "name" not in data[kind]:
            data[kind] = {"name": Recipe.model_fields[kind].default_factory().name, **data[kind]}
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems += _problems(exc)
        recipe = None
    registry = get_registry()
    for kind in KINDS:
        section = data.get(kind)
        if section is None and recipe is not None:
            section = getattr(recipe, kind)
            section = None if section is None else {"name": section.name, **section.params}
        if not isinstance(section, dict) or not isinstance(section.get("name"), str):
            continue  # stage 1 reported it (or the section is absent and optional)
        try:
            spec = registry.get(kind, section["name"])
        except ComponentNotFoundError as exc:
            problems.append(f"{kind}.name: {exc}")
            continue
        params = {k: v for k, v in section.items() if k != "name"}
        try:
            config = spec.config.model_validate(params)
        except ValidationError as exc:
            problems += _problems(exc, prefix=kind)
            continue
        if recipe is not None:
            getattr(recipe, kind)._config = config
    if problems or recipe is None:
        raise RecipeError(problems, source=source)
    return recipe


def load_recipe(source: str | Path | dict[str, Any], overrides: Iterable[str] = ()) -> Recipe:
    """Read (a path or shipped name), override and validate a recipe."""
    if isinstance(source, dict):
        data, where = source, None
    else:
        path = find_recipe(source)
        data, where = read_yaml(path), str(path)
    return validate_recipe(apply_overrides(data, overrides), source=where)
