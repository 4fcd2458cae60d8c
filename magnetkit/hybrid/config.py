"""The recipe's ``hybrid`` section: Hybrid-MAGNeT generation and training (paper §3.4).

Every default of hybrid generation and of its training objective lives here, once.
"""

from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from magnetkit.section import Component


class AutoregressiveSection(Component):
    """The two-model hybrid's autoregressive model: ``{name: <registered rescorer>, <params...>}``.

    Any registered rescorer that can also decode a prefix token by token (implements
    `magnetkit.hybrid.AutoregressiveModel`, as ``musicgen`` does) can be named here.
    """


class HybridConfig(BaseModel):
    """Hybrid-MAGNeT: the first seconds decoded autoregressively, the rest by MAGNeT in parallel."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # -- generation ------------------------------------------------------------------------
    prefix_seconds: float = Field(3.0, gt=0, description="seconds decoded autoregressively before MAGNeT decodes "
                                                         "the rest in parallel (the paper compares 1 s and 3 s)")
    autoregressive: AutoregressiveSection | None = Field(None, description=(
        "two-model hybrid: the autoregressive model, e.g. {name: musicgen, model: facebook/musicgen-small}; "
        "null = single-model Hybrid-MAGNeT (the MAGNeT transformer, trained with the hybrid objective)"))
    top_k: int = Field(250, ge=0, description="autoregressive sampling among the k most probable tokens "
                                              "(0 = all, 1 = greedy); 250 is MusicGen's default")
    temperature: float = Field(1.0, gt=0, description="autoregressive sampling temperature")
    cfg_coef: float = Field(3.0, ge=0, description="autoregressive classifier-free guidance (MusicGen's default 3)")

    # -- training (single-model hybrid) ----------------------------------------------------
    max_prefix_seconds: float = Field(3.0, gt=0, description="training: prefix lengths are drawn uniformly "
                                                             "from 1 frame to this many seconds")
    prefix_prob: float = Field(0.5, ge=0, le=1, description="training: share of batches that get an "
                                                            "autoregressive prefix (the rest train plain MAGNeT)")
    ar_loss_weight: float = Field(0.25, ge=0, description=(
        "training: weight of a prefix token's cross-entropy next to a masked token's in the loss (a weighted "
        "mean over every scored token); 0.25 = 1/K for 4 codebooks, so a prefix frame (K tokens) weighs "
        "about what a masked frame (1 token of one stage) does"))

    @field_validator("autoregressive")
    @classmethod
    def _known_component(cls, section: AutoregressiveSection | None) -> AutoregressiveSection | None:
        """The named model must be registered and its parameters valid (checked before loading)."""
        if section is None:
            return section
        from pydantic import ValidationError

        from magnetkit.errors import ComponentNotFoundError
        from magnetkit.registry import get_registry

        try:
            spec = get_registry().get("rescorer", section.name)
        except ComponentNotFoundError as exc:
            raise PydanticCustomError("unknown_component", str(exc)) from None
        try:
            section._config = spec.config.model_validate(section.params)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: "
                                 f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
                                 for e in exc.errors())
            raise PydanticCustomError("invalid_component", "{name}: {problems}",
                                      {"name": section.name, "problems": problems}) from None
        return section
