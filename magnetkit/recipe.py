"""YAML recipes: safe loading, command-line overrides and two-stage validation.

Stage 1 checks the recipe's structure and that every component name is registered; stage 2
checks each component's parameters against its own config model. Every problem is reported at
once, spelled in recipe terms (``sampler.top_p: ...``). Components are named by registry name
only: a recipe can never import code.
"""

from __future__ import annotations

import copy
import difflib
import math
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from magnetkit.decoding import DecodeOptions
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
# Each decoding step is a full transformer forward; audiocraft uses 20 for the first stage. More
# steps per stage than this cannot change a generation's quality, and only make it run for hours.
MAX_DECODING_STEPS = 1000
SEED_RANGE = (0, 2**63 - 1)  # torch.Generator.manual_seed takes a 64-bit integer


# ------------------------------------------------------------------------------ the schema
class GenerationConfig(BaseModel):
    """How to decode: the parts of generation that are not a component's own parameters."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    duration: float = Field(10.0, gt=0, description="seconds of audio to generate (the pipeline bounds it by "
                                                    "the memory its audio takes)")
    decoding_steps: list[int] = Field(default_factory=lambda: [20, 10, 10, 10],
                                      description=f"decoding steps for each codebook stage (1 to {MAX_DECODING_STEPS})")
    cfg_max: float = Field(10.0, ge=0, description="guidance coefficient at mask rate 1 (start of a stage)")
    cfg_min: float = Field(1.0, ge=0, description="guidance coefficient at mask rate 0 (end of a stage)")
    seed: int | None = Field(None, ge=SEED_RANGE[0], le=SEED_RANGE[1],
                             description="seed of the sampling generator; null = random")
    progress: bool = Field(True, description="show a progress bar")
    window_overlap: float = Field(5.0, ge=0, description="seconds carried over between windows of long outputs")

    @field_validator("decoding_steps")
    @classmethod
    def _positive_steps(cls, steps: list[int]) -> list[int]:
        if not steps or any(s < 1 for s in steps):
            raise ValueError("every stage needs at least 1 decoding step")
        if any(s > MAX_DECODING_STEPS for s in steps):
            raise ValueError(f"at most {MAX_DECODING_STEPS} decoding steps per stage (each step is a whole "
                             f"transformer forward; audiocraft uses 20, 10, 10, 10), got {max(steps)}")
        return steps


class Recipe(BaseModel):
    """A whole system: weights, model, components and generation settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    checkpoint: str | None = Field(None, description="weights: a magnetkit or audiocraft folder, or a hub id")
    model: ModelConfig | None = None
    codec: Component
    conditioner: Component
    scheduler: Component = Field(default_factory=lambda: Component(name="cosine"))
    sampler: Component = Field(default_factory=lambda: Component(name="top_p"))
    rescorer: Component | None = None
    embedder: Component | None = Field(None, description="evaluation embedder (`magnetkit eval`, sweeps); generation ignores it")
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    decode: DecodeOptions = Field(default_factory=DecodeOptions,
                                  description="the decoding loop's precision and speed switches")
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
    from magnetkit.plugins import call_each

    dirs = [RECIPES_DIR]
    for found in call_each("register_recipe_dirs"):
        found = [found] if isinstance(found, (str, Path)) else (found or [])
        dirs.extend(Path(d) for d in found if isinstance(d, (str, Path)))
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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError([f"not valid YAML: {exc}".replace("\n", " ")], source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise RecipeError([f"not UTF-8 text (byte {exc.start}): a recipe is a UTF-8 YAML file"],
                          source=str(path)) from None
    except OSError as exc:
        raise RecipeError([f"cannot read recipe: {exc.strerror}"], source=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(["a recipe must be a mapping of sections"], source=str(path))
    return data


def first_comment(path: Path) -> str:
    """The recipe's first comment line (its purpose)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"(unreadable: {exc.__class__.__name__})"
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


# ----------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value); the value is read as YAML (lists allowed)."""
    if not isinstance(text, str):
        raise RecipeError([f"override {text!r} is not a string of the form key=value"])
    key, sep, raw = text.partition("=")
    keys = [part.strip() for part in key.split(".")]
    if not sep or not all(keys):
        raise RecipeError([f"override {text!r} is not of the form key=value (e.g. sampler.top_p=0.8)"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a recipe mapping (a copy is returned).

    Changing a component's ``name`` drops the parameters the file gave the previous component
    unless the new one accepts them; parameters given on the command line are always kept.
    Every malformed override is reported at once, in one RecipeError.
    """
    if isinstance(overrides, (str, bytes)):  # a lone string would be applied character by character
        raise RecipeError([f"overrides must be a list of key=value strings, got the single string {overrides!r}"])
    data = copy.deepcopy(data)
    renamed: dict[str, set[str]] = {}  # kind -> parameters set by overrides
    problems: list[str] = []
    for text in overrides:
        try:
            keys, value = parse_override(text)
            _set(data, keys, value)
        except RecipeError as exc:
            problems += exc.problems
            continue
        if keys[0] in KINDS and len(keys) == 2:
            renamed.setdefault(keys[0], set())
            if keys[1] == "name":
                renamed[keys[0]].add("__renamed__")
            renamed[keys[0]].add(keys[1])
    if problems:
        raise RecipeError(problems)
    for kind, given in renamed.items():
        if "__renamed__" in given and isinstance(data.get(kind), dict):
            data[kind] = _keep_accepted(kind, data[kind], given)
    return data


def _set(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise RecipeError([f"{'.'.join(keys[:depth + 1])}: is not a section, cannot set {'.'.join(keys)}"])
        node = child
    node[keys[-1]] = value


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


def _model_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (following nested sections), if known."""
    for key in loc[:-1]:
        info: FieldInfo | None = model.model_fields.get(str(key)) if model is not None else None
        if info is None:
            return None
        model = next((t for t in _types(info.annotation) if isinstance(t, type) and issubclass(t, BaseModel)), None)
    return model


def _types(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    return [annotation] if not args else [t for arg in args for t in _types(arg)]


def unknown_key_message(model: type[BaseModel] | None, loc: tuple[Any, ...], prefix: str = "") -> str:
    """``unknown section 'x'; did you mean 'y'?`` (top level) or ``a.x: unknown key; did you mean 'y'?``."""
    parent = _model_at(model, loc)
    known = list(parent.model_fields) if parent is not None else []
    if parent is model and model is not None and model.model_config.get("extra") == "allow":
        known = []
    key = str(loc[-1])
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else (f" (known: {', '.join(known)})" if known else "")
    if not prefix and len(loc) == 1 and model is Recipe:
        return f"unknown section {key!r}{hint}"
    return f"{_where(prefix, loc)}: unknown key{hint}"


def _problems(exc: ValidationError, prefix: str = "", model: type[BaseModel] | None = None) -> list[str]:
    out = []
    for err in exc.errors():
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            out.append(unknown_key_message(model, tuple(err["loc"]), prefix))
            continue
        if err["type"] == "missing":
            msg = "required"
        out.append(f"{_where(prefix, err['loc'])}: {msg}")
    return out


def non_finite(value: Any, where: str) -> list[str]:
    """Problems for every NaN or infinite number inside a validated value (nested sections included)."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: must be a finite number, got {value}"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{where}.{k}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{where}[{i}]")]
    return []


def validate_recipe(data: dict[str, Any], source: str | None = None, overrides: Iterable[str] = ()) -> Recipe:
    """Validate a recipe mapping in two stages; raise one RecipeError with every problem.

    A section with a default component (scheduler, sampler) that gives parameters but no name,
    e.g. from the override ``sampler.temperature=2``, configures the default component.
    ``overrides`` (already applied to ``data``) are checked to have an effect: one that another
    setting makes ineffective is a problem saying which setting wins.
    """
    problems: list[str] = []
    data = dict(data)
    for kind in ("scheduler", "sampler"):
        if isinstance(data.get(kind), dict) and "name" not in data[kind]:
            data[kind] = {"name": Recipe.model_fields[kind].default_factory().name, **data[kind]}
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems += _problems(exc, model=Recipe)
        recipe = None
    if recipe is not None:  # components' parameters are checked below, against their own models
        for section in Recipe.model_fields:
            if section not in KINDS:
                problems += non_finite(getattr(recipe, section), section)
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
            problems += _problems(exc, prefix=kind, model=spec.config)
            continue
        problems += non_finite(config, kind)
        if recipe is not None:
            getattr(recipe, kind)._config = config
    if recipe is not None and not problems:
        problems += ineffective_overrides(recipe, overrides)
    if problems or recipe is None:
        raise RecipeError(problems, source=source)
    return recipe


def ineffective_overrides(recipe: Recipe, overrides: Iterable[str]) -> list[str]:
    """Problems for overrides of component parameters that another parameter overrules.

    A component's config model may define ``ineffective() -> {parameter: why}`` (e.g. a sampler's
    ``temperature`` while ``stage_temperatures`` is set); overriding such a parameter would change
    nothing, silently, so it is refused with the reason.
    """
    problems = []
    for text in overrides:
        keys = text.partition("=")[0].strip().split(".")
        if len(keys) != 2 or keys[0] not in KINDS or getattr(recipe, keys[0]) is None:
            continue
        config = getattr(recipe, keys[0]).config
        why = getattr(config, "ineffective", lambda: {})().get(keys[1])
        if why:
            problems.append(f"{keys[0]}.{keys[1]}: this override has no effect: {why}")
    return problems


def load_recipe(source: str | Path | dict[str, Any], overrides: Iterable[str] = ()) -> Recipe:
    """Read (a path or shipped name), override and validate a recipe."""
    if isinstance(source, dict):
        data, where = source, None
    else:
        path = find_recipe(source)
        data, where = read_yaml(path), str(path)
        check_recipe_chain(path, data)
    overrides = list(overrides) if not isinstance(overrides, (str, bytes)) else overrides
    return validate_recipe(apply_overrides(data, overrides), source=where, overrides=overrides)


def check_recipe_chain(path: Path, data: dict[str, Any], seen: tuple[Path, ...] = ()) -> None:
    """Follow ``checkpoint:`` values that name other local recipe files; a loop is a RecipeError.

    A recipe may take its weights (and defaults) from another recipe through ``checkpoint``;
    one that reaches itself again would recurse for ever.
    """
    seen = (*seen, path.resolve())
    target = data.get("checkpoint")
    if not isinstance(target, str):
        return
    local = (path.parent / target).expanduser()
    if not local.is_file() or local.suffix not in (".yaml", ".yml"):
        return
    if local.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, local.resolve()))
        raise RecipeError([f"checkpoint: the recipe includes itself ({chain})"], source=str(seen[0]))
    check_recipe_chain(local, read_yaml(local), seen)
