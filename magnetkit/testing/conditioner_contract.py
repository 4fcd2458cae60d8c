"""The conditioner contract suite: shapes, the null condition, padding, determinism."""

from __future__ import annotations

import torch

from magnetkit.interfaces import Condition, Conditioner
from magnetkit.testing.checks import expect


def check_conditioner(conditioner: Conditioner, texts: tuple[str, ...] = ("happy rock", "a much longer description of a sad piano")) -> None:
    """Raise AssertionError where ``conditioner`` breaks the contract."""
    dim = conditioner.output_dim
    expect(isinstance(dim, int) and dim > 0, "output_dim must be a positive int")
    with torch.no_grad():
        cond = conditioner(list(texts))
        expect(isinstance(cond, Condition), "a conditioner returns a magnetkit.interfaces.Condition")
        B, L, D = cond.embeddings.shape
        expect((B, D) == (len(texts), dim), f"embeddings must be [B, L, {dim}], got {tuple(cond.embeddings.shape)}")
        expect(cond.mask.shape == (B, L), "mask must be [B, L]")
        expect(torch.isfinite(cond.embeddings).all(), "embeddings must be finite")
        null = conditioner([None, ""])
        expect(null.embeddings.shape[0] == 2 and null.embeddings.shape[2] == dim, f"null embeddings must be [2, L, {dim}]")
        expect(torch.all(null.embeddings == 0), "the null condition (None or '') must be all zeros")
        expect(torch.all(null.mask == 0), "the null condition's mask must be all zeros")
        again = conditioner(list(texts))
        expect(torch.equal(again.embeddings, cond.embeddings), "conditioning must be deterministic in eval mode")
        single = conditioner([texts[0]])
        width = single.embeddings.shape[1]
        expect(torch.allclose(single.embeddings[0], cond.embeddings[0, :width], atol=1e-5),
            "a text's condition must not depend on the other texts of the batch (beyond padding)")
    for name in conditioner.state_dict():
        expect(not name.startswith(("t5.", "encoder.", "clap.")),
            f"state_dict must hold only learned parameters, found frozen backbone tensor {name!r}")
