"""The decoding loop's CPU work outside the transformer, as loops compiled with numba.

With a small transformer, a CPU decoding step spends much of its time in passes over
[positions, card] logits (selecting the generated positions, the CFG mix, the draw). A numba
loop does a chain of such elementwise operations in one pass per row while the row is in
cache. Each function here gives exactly the values of the torch expression it replaces
(tests/test_kernels.py). Callers import this module at the first CPU step that needs it:
numba's import and the load of its cached compilations take ~0.2 s (a first compile ~1 s).
The samplers plugin keeps its own draw in ``magnetkit_samplers.kernels``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

# numba.njit options of every loop: compiled code is cached next to its module (or in numba's
# user cache where that is read-only), and the loops release the GIL.
JIT_OPTIONS = {"cache": True, "nogil": True}


def select_guided(logits: torch.Tensor, index: torch.Tensor, coefficient: float) -> torch.Tensor:
    """The CFG mix at the positions ``index`` [n] of [2, N, card] logits (conditional rows first) -> [1, n, card].

    Exactly ``null + (cond - null) * coefficient`` of ``logits.index_select(1, index)``: the same
    three roundings per entry (no fused multiply-add), read straight from the full logits.
    """
    cond, null = (half.detach().numpy() for half in logits)
    out = np.empty((len(index), logits.shape[-1]), dtype=cond.dtype)
    _select_guided(cond, null, index.numpy(), cond.dtype.type(coefficient), out)
    return torch.from_numpy(out)[None]


@numba.njit(**JIT_OPTIONS)
def _select_guided(cond, null, index, coefficient, out):
    for row in range(index.shape[0]):
        source = index[row]
        for entry in range(out.shape[1]):
            base = null[source, entry]
            out[row, entry] = (cond[source, entry] - base) * coefficient + base
