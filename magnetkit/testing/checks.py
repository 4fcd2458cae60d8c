"""Small helpers shared by the contract suites."""

from __future__ import annotations

from typing import NoReturn

from pydantic import BaseModel, ValidationError


def fail(message: str) -> NoReturn:
    """Fail a contract check with a sentence saying what is expected."""
    raise AssertionError(message)


def expect(condition: bool, message: str) -> None:
    """Fail unless ``condition`` holds."""
    # An explicit raise, not `assert`: the suites must keep working under `python -O`.
    if not condition:
        fail(message)


def check_config_serialises(config: BaseModel) -> None:
    """A component config survives dict and JSON round trips and rejects unknown keys."""
    cls = type(config)
    expect(cls.model_validate(config.model_dump()) == config, "config must survive model_dump / model_validate")
    expect(cls.model_validate_json(config.model_dump_json()) == config, "config must survive a JSON round trip")
    try:
        cls.model_validate({**config.model_dump(), "no_such_parameter": 1})
    except ValidationError:
        return
    fail(f"{cls.__name__} must reject unknown keys (model_config extra='forbid') so recipe typos fail")
