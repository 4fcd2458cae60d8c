"""magnetkit built-in plugin: the ``clap`` conditioner (frozen transformers ClapModel + learned projection)."""

from magnetkit import hookimpl

from magnetkit_clap.conditioner import ClapBackbone, ClapConditioner, ClapConditionerConfig, factory, load_clap

__all__ = ["ClapBackbone", "ClapConditioner", "ClapConditionerConfig", "factory", "load_clap",
           "register_conditioners"]


@hookimpl
def register_conditioners(register) -> None:
    """Register the ``clap`` conditioner."""
    register("clap", factory, config=ClapConditionerConfig)
