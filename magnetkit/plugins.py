"""The plugin manager: loads the ``magnetkit`` entry-point group once.

``MAGNETKIT_PLUGINS`` is an allow-list: unset loads every installed plugin, a comma-separated
list loads only those entry-point names, and an empty value loads none.

One broken third-party plugin (an import error, an unknown hook, a hook that raises, a name
another plugin already registered) never takes the others down: it is skipped with a warning
that names it and its error, and `magnetkit plugins` lists it as broken.
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import os
from dataclasses import dataclass
from typing import Any

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
_broken: dict[str, str] = {}  # plugin name -> why it was skipped
BUILTIN_DISTRIBUTION = "magnetkit"  # its plugins load first, so a third-party duplicate is the one skipped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginInfo:
    """What `magnetkit plugins` shows about one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    error: str | None = None  # why a broken plugin was skipped; None when it loaded


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
    found = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP),
                   key=lambda ep: ep.dist is None or ep.dist.name != BUILTIN_DISTRIBUTION)
    for ep in found:
        if allow is not None and ep.name not in allow:
            continue
        dist = (ep.dist.name, ep.dist.version) if ep.dist is not None else ("?", "?")
        if pm.has_plugin(ep.name) or ep.name in _broken:
            if _distributions.get(ep.name) != dist:
                first = _distributions.get(ep.name, ("?", "?"))[0]
                warn_broken(f"{ep.name} ({dist[0]})", f"the plugin name {ep.name!r} is already taken by the "
                                                       f"distribution {first!r}")
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
            pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is reported, the rest still load
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            detail = f"unknown hook: {exc}" if isinstance(exc, pluggy.PluginValidationError) else describe(exc)
            warn_broken(ep.name, f"{ep.value}: {detail}")
            continue
        _distributions[ep.name] = dist
    if allow:
        unknown = sorted(allow - {ep.name for ep in found})
        if unknown:
            log.warning(f"{ALLOW_ENV} names plugin(s) that are not installed: {', '.join(unknown)} "
                        f"(installed: {', '.join(sorted({ep.name for ep in found})) or 'none'})")
    return pm


def describe(exc: BaseException) -> str:
    """``ImportError: No module named 'x'``: an exception in one line."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def warn_broken(name: str, error: str) -> None:
    """Record a plugin that is skipped and warn once, naming it and its error."""
    if name in _broken:
        return
    _broken[name] = error
    log.warning(f"plugin {name!r} is skipped: {error}")


def mark_broken(name: str, error: str) -> None:
    """Skip a loaded plugin from now on (its hooks failed): unregister it, record and warn."""
    if pm.has_plugin(name):
        pm.unregister(name=name)
    warn_broken(name, error)


def call_each(hook_name: str, **kwargs: Any) -> list[Any]:
    """Call one hook's implementations one at a time; a plugin whose implementation raises is skipped."""
    results = []
    for impl in list(getattr(load_plugins().hook, hook_name).get_hookimpls()):
        name = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            results.append(impl.function(**{arg: kwargs[arg] for arg in impl.argnames}))
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            mark_broken(name, f"{hook_name} raised {describe(exc)}")
    return results


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
    _broken.pop(name, None)
    pm.register(module, name=name)
    _changed()
    check_pending()


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered in-process."""
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    _broken.pop(name, None)
    _changed()


def reset_plugins() -> None:
    """Forget every loaded plugin so the next `load_plugins()` reads the entry points again."""
    global _loaded
    for _name, plugin in list(pm.list_name_plugin()):
        pm.unregister(plugin)
    _distributions.clear()
    _broken.clear()
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
    infos += [PluginInfo(name=name, distribution=None, version=None, hooks=(), error=error)
              for name, error in sorted(_broken.items())]
    return infos
