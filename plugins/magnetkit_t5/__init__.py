"""magnetkit built-in plugin: audiocraft's T5 text conditioner, registered as ``t5``."""

from __future__ import annotations

from magnetkit import hookimpl
from magnetkit_t5.conditioner import T5Conditioner, T5ConditionerConfig, build_t5_conditioner

__all__ = ["T5Conditioner", "T5ConditionerConfig", "build_t5_conditioner"]


@hookimpl
def register_conditioners(register) -> None:
    """Register the ``t5`` conditioner."""
    register("t5", build_t5_conditioner, config=T5ConditionerConfig)
