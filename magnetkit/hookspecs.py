"""The hooks a magnetkit plugin can implement: one per component kind, plus recipes and commands.

A plugin module implements any of these with ``@magnetkit.hookimpl`` and is declared in its
package metadata under the ``magnetkit`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from pydantic import BaseModel

hookspec = pluggy.HookspecMarker("magnetkit")
hookimpl = pluggy.HookimplMarker("magnetkit")


class Register(Protocol):
    """The callable a ``register_*`` hook receives."""

    def __call__(self, name: str, factory: Callable[..., Any], config: type[BaseModel] | None = None,
                 description: str | None = None) -> None:
        """Register ``factory(config, **context)`` under ``name`` (see `magnetkit.interfaces` for the context)."""
        ...


@hookspec
def register_codecs(register: Register) -> None:
    """Register codec factories (audio <-> codes)."""


@hookspec
def register_conditioners(register: Register) -> None:
    """Register conditioner factories (text or audio -> condition embeddings)."""


@hookspec
def register_masking_schedulers(register: Register) -> None:
    """Register masking-scheduler factories (mask-rate curve and span masking)."""


@hookspec
def register_samplers(register: Register) -> None:
    """Register sampler factories (guided logits -> tokens and confidences)."""


@hookspec
def register_rescorers(register: Register) -> None:
    """Register rescorer factories (external models that score candidate tokens)."""


@hookspec
def register_embedders(register: Register) -> None:
    """Register embedder factories (audio, and text for joint models, -> vectors for metrics)."""


@hookspec
def register_recipe_dirs() -> list[Path]:
    """Return folders of YAML recipes this plugin ships (one named ``default-model`` is the default model)."""


@hookspec
def register_commands(subparsers: "argparse._SubParsersAction") -> None:
    """Add sub-commands to the ``magnetkit`` CLI (set ``func`` with ``set_defaults``)."""
