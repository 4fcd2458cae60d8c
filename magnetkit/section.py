"""A component section of a recipe: ``{name: <registry name>, <params...>}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr


class Component(BaseModel):
    """A component section: ``{name: <registry name>, <params...>}``."""

    model_config = ConfigDict(extra="allow")

    name: str
    _config: BaseModel | None = PrivateAttr(default=None)

    @property
    def params(self) -> dict[str, Any]:
        """The parameters as written (everything but ``name``)."""
        return dict(self.model_extra or {})

    @property
    def config(self) -> BaseModel:
        """The parameters validated by the component's own config model (after stage 2)."""
        if self._config is None:
            raise RuntimeError(f"component {self.name!r} has not been validated; use validate_recipe()")
        return self._config
