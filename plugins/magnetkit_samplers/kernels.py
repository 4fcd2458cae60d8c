"""The nucleus draw on a CPU, compiled with numba: no sort, a few passes over each row while it is in cache.

A token is drawn from the whole softmax by inverting its cumulative sums in vocabulary order
(block sums first, so the search reads one block of entries), then kept if it lies in the
nucleus -- the mass of the tokens ranked above it is at most p -- and drawn again otherwise.
Conditioned on being kept, a token is drawn with its probability over the nucleus's mass: the
renormalised top-p distribution, exactly (to float rounding at the nucleus's border). The
nucleus holds at least p of the mass, so each draw is kept with probability >= p; rows whose
`ROUNDS` draws all fall outside are left to the caller's sorting draw.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from magnetkit import JIT_OPTIONS

# Candidate draws per row: a row is left undrawn with probability (1 - p)^ROUNDS at most (1e-4 at p = 0.9).
ROUNDS = 4
# Entries per block of the cumulative-sum search.
BLOCK = 64


def nucleus_draw(probs: torch.Tensor, top_p: float,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a token from the top-p nucleus of each row of ``probs`` [N, card] (a CPU float tensor).

    Ranks follow a stable descending sort (tied tokens in vocabulary order), as in the sorting
    draw: a tied token is in the nucleus if the mass ranked above it, the ties before it
    included, is at most ``top_p``.

    Returns:
        (tokens [N] int64, drawn [N] bool): rows with ``drawn`` False hold no token yet.
    """
    array = np.ascontiguousarray(probs.detach().numpy())
    uniforms = torch.rand(array.shape[0], ROUNDS, generator=generator, dtype=probs.dtype).numpy()
    tokens = np.zeros(array.shape[0], dtype=np.int64)
    drawn = np.zeros(array.shape[0], dtype=np.bool_)
    _nucleus_rows(array, uniforms, array.dtype.type(top_p), tokens, drawn)
    return torch.from_numpy(tokens), torch.from_numpy(drawn)


@numba.njit(**JIT_OPTIONS)
def _nucleus_rows(probs, uniforms, top_p, tokens, drawn):
    card = probs.shape[1]
    sums = np.empty((card + BLOCK - 1) // BLOCK, dtype=probs.dtype)
    for row in range(probs.shape[0]):
        values = probs[row]
        total = _block_sums(values, sums)
        for attempt in range(uniforms.shape[1]):
            token = _invert(values, sums, (1 - uniforms[row, attempt]) * total)
            if _mass_ranked_above(values, token) <= top_p:
                tokens[row] = token
                drawn[row] = True
                break


@numba.njit(**JIT_OPTIONS)
def _block_sums(values, sums):
    """Fill ``sums`` with the sums of BLOCK entries each; return their sum in the order `_invert` adds them."""
    total = values.dtype.type(0)
    for block in range(sums.shape[0]):
        sums[block] = _sum(values[block * BLOCK:(block + 1) * BLOCK])
        total += sums[block]
    return total


@numba.njit(fastmath={"reassoc", "nsz"}, **JIT_OPTIONS)
def _sum(values):
    """The sum of ``values`` in whatever order vectorises (reassociated)."""
    total = values.dtype.type(0)
    for entry in range(values.shape[0]):
        total += values[entry]
    return total


@numba.njit(**JIT_OPTIONS)
def _invert(values, sums, target):
    """The first token at which the cumulative sum reaches ``target`` in (0, total]; never a zero entry."""
    reached = values.dtype.type(0)
    block = 0
    while block < sums.shape[0] - 1 and reached + sums[block] < target:
        reached += sums[block]
        block += 1
    stop = min((block + 1) * BLOCK, values.shape[0])
    for entry in range(block * BLOCK, stop):
        if values[entry] > 0:
            reached += values[entry]
            if reached >= target:
                return entry
    # Summed entry by entry, the block fell short of what its sum promised (float rounding):
    # the last token with mass up to here.
    for entry in range(stop - 1, -1, -1):
        if values[entry] > 0:
            return entry
    return 0


@numba.njit(fastmath={"reassoc", "nsz"}, **JIT_OPTIONS)
def _mass_ranked_above(values, token):
    """The mass ranked above ``token``: every larger value, and the values tied with it earlier in the vocabulary."""
    level = values[token]
    zero = values.dtype.type(0)
    above = zero
    for entry in range(values.shape[0]):
        above += values[entry] if values[entry] > level else zero
    ties = 0
    for entry in range(token):
        ties += values[entry] == level
    return above + ties * level
