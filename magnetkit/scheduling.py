"""The reusable scheduler base: span parameters and all span masking; a subclass supplies only gamma(t).

`SpanScheduler` implements the whole `magnetkit.interfaces.MaskingScheduler` contract around one
abstract method, `SpanScheduler.mask_rate`. The built-in cosine, linear and power schedulers
(plugin ``magnetkit_schedulers``) subclass it, exactly as a third-party scheduler can::

    from magnetkit import SchedulerConfig, SpanScheduler

    class Quadratic(SpanScheduler):
        def mask_rate(self, t):
            return 1 - self.as_time(t) ** 2
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from magnetkit.component_config import SchedulerConfig
from magnetkit.spans import extend_spans, least_probable_spans, num_spans_table, top_units_mask


class SpanScheduler(ABC):
    """A `magnetkit.MaskingScheduler` whose subclasses supply only the curve gamma(t).

    Decoding units: with ``arrangement="nonoverlap"`` and ``span_len > 1`` a unit is a chunk of
    ``span_len`` frames and a stage is cut to a whole number of chunks; otherwise a unit is one
    frame (stride-1 spans are then chosen over frames, see `least_probable_spans`).
    """

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.span_len = config.span_len
        self.arrangement = config.arrangement

    @property
    def chunked(self) -> bool:
        """Whether decoding units are non-overlapping chunks of ``span_len`` frames."""
        return self.arrangement == "nonoverlap" and self.span_len > 1

    # ------------------------------------------------------------------------- the curve
    @abstractmethod
    def mask_rate(self, t: torch.Tensor) -> torch.Tensor:
        """gamma(t) for t in [0, 1] (float32): 1 at t=0, 0 at t=1."""

    def as_time(self, t: torch.Tensor | float) -> torch.Tensor:
        """``t`` as a float32 tensor, the precision audiocraft computes mask rates in.

        Public for subclasses: a `mask_rate` written on ``self.as_time(t)`` gives the decoding
        counts audiocraft gives (float64 gives other counts at several step numbers).
        """
        return torch.as_tensor(t, dtype=torch.float32)

    # ---------------------------------------------------------------------- units and sizes
    def num_units(self, num_frames: int) -> int:
        """How many decoding units (chunks or frames) a stage of ``num_frames`` frames has."""
        return num_frames // self.span_len if self.chunked else num_frames

    def usable_frames(self, num_frames: int) -> int:
        """``num_frames`` cut down to a whole number of chunks (nonoverlap), else unchanged."""
        return self.num_units(num_frames) * self.span_len if self.chunked else num_frames

    def num_to_mask(self, step: int, num_steps: int, num_units: int) -> int:
        """Units (frames, for stride-1 spans) to mask at decoding ``step`` of ``num_steps`` (§3.2).

        ``int(gamma(t_i) * n)`` with t_i the step's point of ``linspace(0, 1, num_steps)``, all in
        float32 as audiocraft computes it (float64 gives other counts at several step numbers),
        and at least one unit.

        Args:
            step: the decoding step, from 0.
            num_steps: the stage's number of decoding steps.
            num_units: units left to generate (a prompt's units excluded).

        Returns:
            A number in [1, num_units].

        Raises:
            ValueError: when ``step`` is outside [0, num_steps) or ``num_units`` < 1.
        """
        if not 0 <= step < num_steps:
            raise ValueError(f"step must be in [0, {num_steps}), got {step}")
        if num_units < 1:
            raise ValueError(f"num_units must be at least 1, got {num_units}")
        timestep = torch.linspace(0, 1, num_steps)[step]
        rate = self.mask_rate(timestep)
        return max(int((rate * num_units).item()), 1)

    # ------------------------------------------------------------------- decoding masks
    def unit_scores(self, token_scores: torch.Tensor, reduce: str) -> torch.Tensor:
        """Per-token confidences [B, T] -> per-unit re-mask scores [B, U] (higher = remask first).

        Chunks score ``1 - max p`` (``reduce="max"``) or ``sum -log p`` (``"prod"``, the product of
        probabilities in log space, §3.2). Single frames and stride-1 spans always use ``-log p``,
        as audiocraft does; `decode_mask` sums those over each overlapping span.

        Raises:
            ValueError: for an unknown ``reduce`` or a length that is not a whole number of chunks.
        """
        if reduce not in ("max", "prod"):
            raise ValueError(f"reduce must be 'max' or 'prod', got {reduce!r}")
        if not self.chunked:
            return -torch.log(token_scores)
        batch, num_frames = token_scores.shape
        self._check_whole_chunks(num_frames)
        chunks = token_scores.reshape(batch, num_frames // self.span_len, self.span_len)  # [B, U, span]
        if reduce == "max":
            return 1 - chunks.max(dim=-1).values
        return (-torch.log(chunks)).sum(dim=-1)

    def decode_mask(self, unit_scores: torch.Tensor, num_masked: int, num_frames: int) -> torch.Tensor:
        """Boolean token mask [B, T] of the ``num_masked`` highest-scoring units.

        For stride-1 spans ``unit_scores`` are per-frame ``-log p`` and ``num_masked`` is a number
        of frames: the least probable overlapping spans whose union is closest to it are masked.

        Args:
            unit_scores: [B, U] re-mask scores (a prompt's units set very low by the caller).
            num_masked: from `num_to_mask`.
            num_frames: T, the stage's usable length.

        Returns:
            The bool mask [B, T].

        Raises:
            ValueError: when ``num_masked`` is outside [1, U] or the sizes do not fit together.
        """
        num_units = unit_scores.shape[-1]
        if not 1 <= num_masked <= num_units:
            raise ValueError(f"num_masked must be in [1, {num_units}], got {num_masked}")
        if self.arrangement == "stride1" and self.span_len > 1:
            if num_units != num_frames:
                raise ValueError(f"stride-1 scores must have one per frame ({num_frames}), got {num_units}")
            if num_frames < self.span_len:
                raise ValueError(f"{num_frames} frames cannot hold a span of {self.span_len}")
            rows = [least_probable_spans(row, num_masked, self.span_len) for row in unit_scores]
            return torch.stack(rows)
        return self.unit_mask_to_tokens(top_units_mask(unit_scores, num_masked), num_frames)

    def unit_mask_to_tokens(self, unit_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Boolean [B, U] -> [B, T]: each chunk's value repeated over its frames.

        Raises:
            ValueError: when U units do not make up exactly ``num_frames`` frames.
        """
        per_unit = self.span_len if self.chunked else 1
        if unit_mask.shape[-1] * per_unit != num_frames:
            raise ValueError(
                f"{unit_mask.shape[-1]} units of {per_unit} frame(s) do not make {num_frames} frames; "
                f"pass usable_frames(T) = {self.usable_frames(num_frames)}"
            )
        return unit_mask.bool().repeat_interleave(per_unit, dim=-1)

    def _check_whole_chunks(self, num_frames: int) -> None:
        if num_frames % self.span_len:
            raise ValueError(
                f"{num_frames} frames are not a whole number of {self.span_len}-frame chunks; "
                f"cut the stage to usable_frames(T) = {self.usable_frames(num_frames)}"
            )

    # ---------------------------------------------------------------------- training masks
    def mask_rate_to_num_spans(self, rates: torch.Tensor | float, num_frames: int) -> torch.Tensor:
        """Number of random span starts giving mean mask rate ``rates`` over ``num_frames`` (App. C).

        The rate is rounded to a whole percent and looked up in `num_spans_table`; at least one span.
        """
        table = torch.tensor(num_spans_table(num_frames, self.span_len), device=torch.as_tensor(rates).device)
        percent = torch.round(100 * self.as_time(rates).to(table.device)).long().clamp(0, 100)
        return table[percent].clamp(min=1)

    def random_span_mask(self, rates: torch.Tensor, num_frames: int,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Random span mask [B, T] whose mean rate is ``rates`` [B] (training, paper §3.1 and App. C).

        ``span_len > 1``: the App. C number of span starts, drawn uniformly without replacement
        among all T frames (training always uses overlapping spans, whatever the decoding
        arrangement), each extended to ``span_len`` frames. ``span_len == 1``: ``round(rate * T)``
        random frames, at least one. Random numbers are drawn as audiocraft draws them.

        Raises:
            ValueError: when ``num_frames < span_len``.
        """
        if num_frames < self.span_len:
            raise ValueError(f"{num_frames} frames cannot hold a span of {self.span_len}")
        batch = rates.shape[0]
        # A uniform random permutation of the frames per row; its first k entries are the picks.
        ranks = torch.rand((batch, num_frames), generator=generator, device=rates.device).argsort(dim=-1)
        if self.span_len == 1:
            count = (num_frames * rates).round().clamp(min=1)
            return ranks < count[:, None]
        starts = ranks < self.mask_rate_to_num_spans(rates, num_frames)[:, None]
        return extend_spans(starts, self.span_len)

    def sample_training_mask(self, batch: int, num_frames: int, generator: torch.Generator | None = None,
                             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """A training mask and the mask rates it was drawn at: t ~ U(0, 1) per row, rate gamma(t).

        Args:
            batch: B.
            num_frames: T.
            generator: the source of randomness (on ``device``); None uses torch's global one.
            device: where the tensors are made.

        Returns:
            (bool mask [B, T], float32 rates [B]).
        """
        t = torch.empty(batch, dtype=torch.float32, device=device).uniform_(0, 1, generator=generator)
        rates = self.mask_rate(t)
        return self.random_span_mask(rates, num_frames, generator), rates

    def training_mask(self, batch: int, num_frames: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
        """Random span mask [B, T] at a mask rate gamma(t), t ~ U(0, 1) per row (training)."""
        return self.sample_training_mask(batch, num_frames, generator, device)[0]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({params})"
