"""The recipe's ``decode`` section: the decoding loop's numeric precision and speed switches.

The single home of every decoding option's default: `magnetkit.engine.Decoder` takes this model,
a recipe's ``decode:`` section validates into it, and ``decode.precision=int8`` works as an
override on the command line and in `magnetkit.load`. Kept free of torch so reading a recipe
stays fast; `magnetkit.precision` applies the precision to a transformer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["float32", "bfloat16", "float16", "int8"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16", "float16", "int8")


class DecodeOptions(BaseModel):
    """Numeric precision and speed switches of the decoding loop, each measured by ``benchmarks/``.

    The defaults are the fastest settings that keep greedy generations identical to audiocraft's
    (``tests/test_speed_options.py``). ``skip_unit_guidance`` acts only at a coefficient of exactly
    1, where it returns the conditional logits that the CFG mix gives up to one rounding.
    ``precision`` other than float32 and ``compile`` change float rounding, so they are off unless
    asked for. Built directly, a bad value raises pydantic's ``ValidationError`` (a ``ValueError``);
    from a recipe, it is one ``decode.<option>: ...`` line of the recipe's errors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: Precision = Field(
        "float32", description="the transformer's arithmetic: float32 (exact), bfloat16 (weights and "
        "activations converted), int8 (linear layers quantised, activations per row at run time), "
        "float16 (GPU only); the codec and conditioner stay float32")
    cross_cache: bool = Field(True, description="the condition's cross-attention keys/values once per generation")
    stage_only: bool = Field(True, description="compute only the decoded stage's output head")
    skip_unit_guidance: bool = Field(True, description="a CFG coefficient of exactly 1 runs only the conditional rows")
    blocked_attention: bool = Field(True, description="stages > 0: restricted attention block by block, "
                                    "not through a [T, T] mask")
    check_every_step: bool = Field(False, description="re-check code values at every forward "
                                   "(a host sync per step on GPU)")
    masked_only: bool | None = Field(None, description="guide and sample only the positions being generated "
                                     "(samplers that declare positionwise); null: on CPU only, since on a GPU "
                                     "the data-dependent size costs a host sync per step")
    cpu_kernels: bool = Field(True, description="with masked_only on a CPU: select and CFG-mix the positions "
                              "in one numba loop (the same values as the torch ops)")
    compile: bool = Field(False, description="torch.compile the transformer; the first generation pays for compiling")
    cuda_graphs: bool = Field(False, description="with compile: replay CUDA graphs (torch.compile's reduce-overhead)")
    compile_freeze: bool = Field(False, description="with compile: fold the weights into the graph (inference only)")
    compile_backend: Literal["inductor", "eager", "aot_eager"] = Field(
        "inductor", description="torch.compile backend; eager traces the graph without generating code")

    @model_validator(mode="after")
    def _compile_settings_need_compile(self) -> DecodeOptions:
        if (self.cuda_graphs or self.compile_freeze) and not self.compile:
            raise ValueError("cuda_graphs and compile_freeze need compile=True: they are torch.compile settings")
        return self

    def replace(self, **changes: Any) -> DecodeOptions:
        """A copy with ``changes`` applied and validated."""
        return DecodeOptions(**{**self.model_dump(), **changes})
