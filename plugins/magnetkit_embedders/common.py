"""What the embedders share: the clips' lengths, and moving a wrapped model between devices."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def clip_lengths(wav: torch.Tensor, lengths: Sequence[int] | None) -> list[int]:
    """Each clip's length in samples: ``lengths``, or the full ``wav`` [B, C, S] for every clip."""
    return [wav.shape[-1]] * wav.shape[0] if lengths is None else list(lengths)


class ModelOnDevice:
    """An embedder that wraps one ``torch.nn.Module`` in ``self.model`` and runs it on ``self.device``."""

    model: torch.nn.Module
    device: torch.device

    def to(self, device: torch.device | str) -> ModelOnDevice:
        """Run the wrapped model on ``device``."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self
