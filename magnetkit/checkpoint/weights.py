"""Loading a plain tensor dict into a module: exact key and shape checks, cast to the module's dtype."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from magnetkit.errors import CheckpointError

_SHOWN = 12  # keys listed in one error line before "and N more"


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def check_state(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Raise one ``CheckpointError`` line unless ``state`` has exactly ``module``'s keys and shapes."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unknown keys: {_listing(unexpected)}")
    if problems:
        raise CheckpointError(f"{what} does not match the model: " + "; ".join(problems))
    mismatched = [f"{key} {list(state[key].shape)} != {list(value.shape)}"
                  for key, value in expected.items() if state[key].shape != value.shape]
    if mismatched:
        raise CheckpointError(f"{what} does not match the model: wrong shapes: {_listing(mismatched)}")


def load_weights(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Copy ``state`` into ``module`` (cast to each parameter's dtype and device) after ``check_state``."""
    check_state(module, state, what=what)
    with torch.no_grad():
        for key, target in module.state_dict().items():
            target.copy_(state[key])  # copy_ casts fp16 -> fp32 (or back) and moves devices


def module_state(module: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Detached CPU copies of ``module``'s tensors, optionally cast to ``dtype`` (floating ones only)."""
    state = {}
    for key, value in module.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        state[key] = value.clone().contiguous()
    return state
