"""The component registry: name -> factory + pydantic config model + the plugin that provided it.

Built once from the ``register_*`` hooks of every loaded plugin.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from magnetkit.errors import ComponentNotFoundError, PluginError
from magnetkit.plugins import generation, load_plugins

# kind -> the hook that registers it; the kind is also the recipe section's name.
KINDS: dict[str, str] = {
    "codec": "register_codecs",
    "conditioner": "register_conditioners",
    "scheduler": "register_masking_schedulers",
    "sampler": "register_samplers",
    "rescorer": "register_rescorers",
    "embedder": "register_embedders",  # optional recipe section: generation never builds one
}


class NoParams(BaseModel):
    """Config of a component that takes no parameters."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ComponentSpec:
    """One registered component."""

    name: str
    kind: str
    factory: Callable[..., Any]
    config: type[BaseModel]
    plugin: str
    description: str

    def build(self, params: dict[str, Any] | BaseModel | None = None, **context: Any) -> Any:
        """Validate ``params`` against the config model and call the factory."""
        config = params if isinstance(params, self.config) else self.config.model_validate(params or {})
        return self.factory(config, **context)


class Registry:
    """Every component of every kind, looked up by name."""

    def __init__(self) -> None:
        self._specs: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}

    def add(self, spec: ComponentSpec) -> None:
        """Add a component; a name registered twice for one kind is an error naming both plugins."""
        existing = self._specs[spec.kind].get(spec.name)
        if existing is not None:
            raise PluginError(
                f"{spec.kind} {spec.name!r} is registered twice: by plugin {existing.plugin!r} "
                f"and by plugin {spec.plugin!r}"
            )
        self._specs[spec.kind][spec.name] = spec

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The component ``name`` of ``kind``; an unknown name lists the available ones."""
        specs = self._specs[kind]
        if name not in specs:
            available = ", ".join(sorted(specs)) or "none"
            raise ComponentNotFoundError(
                f"unknown {kind} {name!r}; available: {available} "
                f"(see `magnetkit components --kind {kind}`)"
            )
        return specs[name]

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self._specs[kind])

    def all(self, kind: str | None = None) -> list[ComponentSpec]:
        """Every spec, optionally of one kind, sorted by kind then name."""
        kinds = [kind] if kind else list(KINDS)
        return [self._specs[k][n] for k in kinds for n in sorted(self._specs[k])]


def _describe(factory: Callable[..., Any], description: str | None) -> str:
    if description:
        return description.strip().splitlines()[0]
    doc = inspect.getdoc(factory) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def build_registry() -> Registry:
    """Call every loaded plugin's ``register_*`` hooks and collect what they register."""
    pm = load_plugins()
    registry = Registry()
    for kind, hook_name in KINDS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)

            def register(name: str, factory: Callable[..., Any], config: type[BaseModel] | None = None,
                         description: str | None = None, _kind: str = kind, _plugin: str = plugin_name) -> None:
                registry.add(ComponentSpec(name=name, kind=_kind, factory=factory, config=config or NoParams,
                                           plugin=_plugin, description=_describe(factory, description)))

            impl.function(register=register)
    return registry


_registry: Registry | None = None
_built_at = -1  # the plugins' `generation()` the cached registry was built at


def get_registry() -> Registry:
    """The registry, built on first use and again whenever the loaded plugins change."""
    global _registry, _built_at
    if _registry is None or _built_at != generation():
        _built_at = generation()  # before building: loading entry points does not change the set
        _registry = build_registry()
    return _registry


def reset() -> None:
    """Drop the cached registry."""
    global _registry
    _registry = None


def build(kind: str, name: str, params: dict[str, Any] | BaseModel | None = None, **context: Any) -> Any:
    """Build component ``name`` of ``kind`` from its parameters."""
    return get_registry().get(kind, name).build(params, **context)
