"""The draws the built-in samplers share; their base class is the core's `magnetkit.TemperatureSampler`."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["draw", "draw_ranked", "mass_below", "on_cpu_as_float", "ranked_cumulative"]


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``probs`` [..., card] -> [..., 1] with a single ``torch.multinomial`` call.

    The rows are flattened to [N, card] first, so the random stream is consumed exactly as
    audiocraft's ``utils.multinomial`` consumes it.
    """
    flat = probs.reshape(-1, probs.shape[-1])
    picked = torch.multinomial(flat, num_samples=1, generator=generator)
    return picked.reshape(*probs.shape[:-1], 1)


# ------------------------------------------------------------------------------ the fast draw
def ascending_values(probs: torch.Tensor) -> torch.Tensor:
    """The values of ``probs`` [N, card] sorted ascending along the last dim (no indices).

    On CPU numpy's SIMD sort of float32 values is ~4x faster than an argsort and ~20x faster
    than ``torch.sort`` (measured on [498, 2048] rows); elsewhere ``torch.sort``.
    """
    if on_cpu_as_float(probs):
        return torch.from_numpy(np.sort(probs.detach().numpy(), axis=-1))
    return torch.sort(probs, dim=-1).values


def ranked_cumulative(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the values of ``probs`` [N, card] sorted ascending, their cumulative sums), both [N, card]."""
    ascending = ascending_values(probs)
    return ascending, torch.cumsum(ascending, dim=-1)


def mass_below(cumulative: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """The probability mass of the ascending ranks below ``first`` [N, 1], from `ranked_cumulative`'s sums."""
    return torch.gather(cumulative, -1, (first - 1).clamp(min=0)) * (first > 0)


def draw_ranked(probs: torch.Tensor, ascending: torch.Tensor, cumulative: torch.Tensor, first: torch.Tensor,
                generator: torch.Generator | None) -> torch.Tensor:
    """Draw one token per row of ``probs`` [N, card] among the ranks ``first`` [N, 1] and above.

    ``ascending`` and ``cumulative`` are `ranked_cumulative`'s. A rank j >= first is drawn with
    probability ascending[j] / (mass of those ranks) by inverting the cumulative sums at one
    uniform number per row -- the distribution of ``torch.multinomial`` on the kept, renormalised
    probabilities, without sorting indices or drawing a random number per vocabulary entry --
    and the token is the one holding that rank: the only token with that probability, or, among
    tokens tied at it, the one a stable descending sort would put there (the n-th tied token in
    vocabulary order for the n-th tied rank from the top). Each tied rank is equally likely, so
    each kept tied token is too; a tie cut by ``first`` keeps its first tokens.

    Returns:
        tokens [N] int64.
    """
    last = probs.shape[-1] - 1
    dropped = mass_below(cumulative, first)  # [N, 1]
    uniform = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=cumulative.dtype)
    # A target in (dropped, total]; the first rank whose cumulative sum reaches it is drawn.
    target = dropped + (1 - uniform) * (cumulative[:, -1:] - dropped)
    rank = torch.searchsorted(cumulative, target).clamp_(max=last)
    rank = torch.maximum(rank, first)  # (float rounding at the lower end)
    value = torch.gather(ascending, -1, rank)
    tokens = _first_equal(probs, value)
    lowest, above = torch.searchsorted(ascending, value), torch.searchsorted(ascending, value, right=True)
    tied = above - lowest > 1  # [N, 1]
    # On CPU only rows drawn from a tie pay for finding the n-th tied token; on a GPU every row
    # does, rather than a device-to-host sync at every step.
    rows = torch.nonzero(tied[:, 0])[:, 0] if _host_syncs_are_free(probs.device) else slice(None)
    if not isinstance(rows, torch.Tensor) or len(rows):
        equal = probs[rows] == value[rows]
        nth = (above - 1 - rank)[rows]  # 0 for the tie's top rank
        pick = (equal & (torch.cumsum(equal, dim=-1) == nth + 1)).max(dim=-1).indices
        tokens[rows] = torch.where(tied[rows, 0], pick, tokens[rows])
    return tokens


def _first_equal(probs: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Index of the first entry of each row of ``probs`` [N, card] equal to ``value`` [N, 1] -> [N]."""
    if on_cpu_as_float(probs):  # numpy's compare and argmax run ~4x faster here
        return torch.from_numpy(np.argmax(probs.detach().numpy() == value.detach().numpy(), axis=-1))
    return (probs == value).max(dim=-1).indices


def on_cpu_as_float(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is a float32/float64 CPU tensor: what numpy and the numba loops take without a copy."""
    return tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64)


def _host_syncs_are_free(device: torch.device) -> bool:
    """Whether reading a tensor's content on the host costs no device synchronisation."""
    return device.type == "cpu"
