"""The plugin manager: loads the ``magnetkit`` entry-point group once.

``MAGNETKIT_PLUGINS`` is an allow-list: unset loads every installed plugin, a comma-separated
list loads only those entry-point names, and an empty value loads none.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
from dataclasses import dataclass

import pluggy

from magnetkit import hookspecs
from magnetkit.errors import PluginError

ENTRY_POINT_GROUP = "magnetkit"
ALLOW_ENV = "MAGNETKIT_PLUGINS"

pm = pluggy.PluginManager("magnetkit")
pm.add_hookspecs(hookspecs)

_loaded = False
# Bumped whenever the set of plugins changes; `magnetkit.registry` rebuilds when it differs from the
# one it was built at (so this module need not import the registry: no import cycle).
_generation = 0
_distributions: dict[str, tuple[str, str]] = {}  # entry-point name -> (distribution, version)


@dataclass(frozen=True)
class PluginInfo:
    """What `magnetkit plugins` shows about one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


def allowed_plugins() -> set[str] | None:
    """The allow-list from the environment, or None when every plugin may load."""
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Load the entry-point group once (idempotent) and check every hook is a known one."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    allow = allowed_plugins()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allow is not None and ep.name not in allow:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
        pm.register(module, name=ep.name)
        if ep.dist is not None:
            _distributions[ep.name] = (ep.dist.name, ep.dist.version)
    check_pending()
    return pm


def check_pending() -> None:
    """Fail loudly when a plugin implements a hook that does not exist (a misspelling)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"unknown hook: {exc}") from exc


def generation() -> int:
    """A number that changes whenever plugins are registered, unregistered or reset."""
    return _generation


def _changed() -> None:
    global _generation
    _generation += 1


def register_plugin(module: object, name: str) -> None:
    """Register an in-process plugin (tests, notebooks); the registry is rebuilt on next use."""
    load_plugins()
    pm.register(module, name=name)
    _changed()
    check_pending()


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered in-process."""
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    _changed()


def reset_plugins() -> None:
    """Forget every loaded plugin so the next `load_plugins()` reads the entry points again."""
    global _loaded
    for _name, plugin in list(pm.list_name_plugin()):
        pm.unregister(plugin)
    _distributions.clear()
    _loaded = False
    _changed()


def plugin_infos() -> list[PluginInfo]:
    """Name, distribution, version and implemented hooks of every loaded plugin."""
    load_plugins()
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        dist, version = _distributions.get(name, (None, None))
        infos.append(PluginInfo(name=name, distribution=dist, version=version, hooks=hooks))
    return infos
