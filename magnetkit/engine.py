"""MAGNeT's iterative parallel decoding (paper §3.3), as an explicit loop over pluggable parts.

For each codebook stage, for each step: the masking scheduler picks the least confident spans
to re-mask, the transformer predicts every position, classifier-free guidance mixes the
conditional and null predictions (annealed with the mask rate), the sampler chooses tokens and
their confidences, an optional rescorer re-weights those confidences (paper Eq. 5).
Arithmetic follows audiocraft's ``MagnetLMModel._generate_stage`` so greedy decoding matches it
exactly. `DecodeOptions` holds the speed switches; ``benchmarks/bench_generation.py`` measures
each one on and off.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from magnetkit.errors import UsageError
from magnetkit.interfaces import DecodingModel, MaskingScheduler, Rescorer, Sampler, missing_members
from magnetkit.model.transformer import BLOCKED_ATTENTION
from magnetkit.sampling import CHUNK_ENTRIES

KEEP_SCORE = -1e4  # score of a unit that must never be re-masked (fixed, or given)

ProgressCallback = Callable[[int, int], None]


@dataclass
class Guidance:
    """Classifier-free guidance: conditional rows, then the rows guided away from (null or negative)."""

    condition: torch.Tensor  # [B, L, D] (or [2B, L, D] with guidance)
    # No defaults here: they live in the recipe's `GenerationConfig` (``generation.cfg_max/cfg_min``).
    cfg_max: float = field(kw_only=True)
    cfg_min: float = field(kw_only=True)
    guided: bool = True  # False: ``condition`` is [B, L, D] and no guidance is applied
    texts: Sequence[str | None] = field(default_factory=list)  # for rescorers with their own text encoder

    def coefficient(self, mask_rate: torch.Tensor) -> float:
        """Annealed coefficient: cfg_max at mask rate 1, cfg_min at mask rate 0 (audiocraft's float maths)."""
        rate = float(mask_rate)
        return rate * self.cfg_max + (1 - rate) * self.cfg_min


@dataclass
class Known:
    """Frames whose codes are given (a prompt, or the context around an infilled range)."""

    codes: torch.Tensor  # [B, K, T]
    frames: torch.Tensor  # [B, T] bool: True where the codes are given

    @staticmethod
    def prefix(prompt: torch.Tensor, num_frames: int) -> Known:
        """A prompt [B, K, P] at the start of ``num_frames`` frames."""
        B, K, P = prompt.shape
        codes = torch.zeros(B, K, num_frames, dtype=torch.long, device=prompt.device)
        codes[..., :P] = prompt
        frames = torch.zeros(B, num_frames, dtype=torch.bool, device=prompt.device)
        frames[:, :P] = True
        return Known(codes, frames)


# -------------------------------------------------------------------------- pure helpers
def guide(logits: torch.Tensor, batch: int, coefficient: float) -> torch.Tensor:
    """CFG mix of [2B, ...] logits: null + (cond - null) * coefficient."""
    cond, null = logits.split(batch, dim=0)
    # The same three roundings as the expression above, in one buffer instead of three.
    return (cond - null).mul_(coefficient).add_(null)


def guided_at(logits: torch.Tensor, index: torch.Tensor, coefficient: float | None,
              cpu_kernel: bool = True) -> torch.Tensor:
    """The (CFG-mixed) logits [1, n, card] at the positions ``index`` [n] of [1 or 2, N, card] logits.

    ``coefficient`` None: nothing to mix, ``logits`` is [1, N, card]. On a CPU with ``cpu_kernel``
    the selection and the mix are one numba loop (`kernels.select_guided`, the values of `guide`).
    """
    if coefficient is None:
        return logits.index_select(1, index)
    if cpu_kernel and logits.device.type == "cpu" and logits.dtype in (torch.float32, torch.float64):
        from magnetkit import kernels  # numba: imported at the first CPU step

        return kernels.select_guided(logits, index, coefficient)
    return guide(logits.index_select(1, index), 1, coefficient)


def initial_scores(known_frames: torch.Tensor | None, batch: int, num_frames: int, num_units: int,
                   device: torch.device) -> torch.Tensor:
    """[B, U] starting scores: 0, or KEEP_SCORE for units whose frames are all given."""
    scores = torch.zeros(batch, num_units, dtype=torch.float32, device=device)
    if known_frames is not None:
        kept = units_fully_known(known_frames, num_frames, num_units)
        scores = scores.masked_fill(kept, KEEP_SCORE)
    return scores


def units_fully_known(known_frames: torch.Tensor, num_frames: int, num_units: int) -> torch.Tensor:
    """[B, T] given frames -> [B, U] units all of whose frames are given."""
    span = num_frames // num_units
    return known_frames[:, : num_units * span].reshape(known_frames.shape[0], num_units, span).all(-1)


def units_generated(token_mask: torch.Tensor, still_masked: torch.Tensor, num_units: int) -> torch.Tensor:
    """[B, U] units generated at this step: chunks the mask picked, or tokens that were masked (audiocraft)."""
    B, T = token_mask.shape
    if num_units == T:
        return still_masked
    return token_mask.reshape(B, num_units, T // num_units).any(-1)


# `DecodeOptions.masked_only` guides and samples this many logits at a time (2 MiB of float32).
POSITION_CHUNK_ENTRIES = CHUNK_ENTRIES


# ------------------------------------------------------------------------------- CPU memory
def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for the next tensors instead of handing it back to the OS.

    PyTorch allocates CPU tensors with malloc. glibc serves large blocks with fresh mmaps and
    trims the heap, so every forward's activations fault in newly zeroed pages again. Keeping
    them measured +20% transformer throughput at batch 16 on the small model on a CPU, a few
    per cent at batch 1. Process-wide and lasting (the process keeps its peak memory); call it
    once in a CPU inference process. Returns False where glibc's ``mallopt`` is unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # mallopt parameters (glibc malloc.h)
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


# ----------------------------------------------------------------------------- speed options
@dataclass(frozen=True)
class DecodeOptions:
    """Speed switches of the decoding loop, each measured on and off by ``benchmarks/``.

    The defaults are the fastest settings that keep greedy generations identical to audiocraft's
    (``tests/test_speed_options.py``). ``skip_unit_guidance`` acts only at a coefficient of exactly
    1, where it returns the conditional logits that the CFG mix gives up to one rounding.
    ``autocast`` and ``compile`` change float rounding, so they are off unless asked for.
    """

    cross_cache: bool = True  # the condition's cross-attention keys/values once per generation
    stage_only: bool = True  # compute only the decoded stage's output head
    skip_unit_guidance: bool = True  # a CFG coefficient of exactly 1 needs only the conditional rows
    blocked_attention: bool = BLOCKED_ATTENTION  # stages > 0: restricted attention block by block, not a [T, T] mask
    check_every_step: bool = False  # re-check code values at every forward (a host sync per step on GPU)
    # Guide and sample only the positions being generated, for samplers whose ``positionwise`` is True.
    # None: on CPU only (on a GPU the data-dependent number of positions costs a host sync per step).
    masked_only: bool | None = None
    # With masked_only on a CPU: select and CFG-mix the positions in one numba loop (`kernels`; same values).
    cpu_kernels: bool = True
    autocast: Literal["bf16", "fp16"] | None = None  # the transformer under torch.autocast (for GPUs)
    compile: bool = False  # torch.compile the transformer; the first generation pays for compiling
    cuda_graphs: bool = False  # with compile: replay CUDA graphs (torch.compile's "reduce-overhead")
    compile_freeze: bool = False  # with compile: fold the weights into the graph (inference only)
    compile_backend: str = "inductor"  # "eager" traces the graph without generating code

    def __post_init__(self) -> None:
        if self.autocast not in (None, "bf16", "fp16"):
            raise UsageError(f"autocast must be None, 'bf16' or 'fp16', got {self.autocast!r}")
        if (self.cuda_graphs or self.compile_freeze) and not self.compile:
            raise UsageError("cuda_graphs and compile_freeze need compile=True: they are torch.compile settings")


@dataclass(frozen=True)
class StepPlan:
    """The host-side numbers of one decoding step, worked out before its stage starts."""

    step: int
    mask_rate: torch.Tensor  # 0-d float32 gamma(t) of this step
    num_masked: int  # units to re-mask
    coefficient: float  # CFG coefficient (unused without guidance)


def plan_stage(scheduler: MaskingScheduler, guidance: Guidance, num_steps: int, to_generate: int) -> list[StepPlan]:
    """Every step's mask rate, re-mask count and CFG coefficient for a stage of ``num_steps``."""
    times = torch.linspace(0, 1, num_steps)  # float32, as audiocraft
    plans = []
    for step in range(num_steps):
        rate = scheduler.mask_rate(times[step])
        plans.append(StepPlan(step, rate, scheduler.num_to_mask(step, num_steps, to_generate),
                              guidance.coefficient(rate)))
    return plans


def cache_rows(cache: list | None, rows: int) -> list | None:
    """The first ``rows`` batch rows of a cross-attention cache (views, no copies)."""
    return None if cache is None else [(key[:rows], value[:rows]) for key, value in cache]


# -------------------------------------------------------------------------------- engine
@dataclass
class Decoder:
    """Decodes codes for one batch; built from the pipeline's components."""

    model: DecodingModel
    scheduler: MaskingScheduler
    sampler: Sampler
    rescorer: Rescorer | None = None
    callback: ProgressCallback | None = None
    options: DecodeOptions = field(default_factory=DecodeOptions)
    _compiled: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # The engine uses only what the contracts declare; a component missing a member fails
        # here in one line instead of deep inside the loop.
        for what, component, contract in (("model", self.model, DecodingModel),
                                           ("scheduler", self.scheduler, MaskingScheduler),
                                           ("sampler", self.sampler, Sampler)):
            missing = missing_members(component, contract)
            if missing:
                raise UsageError(f"the {what} {type(component).__name__} lacks {', '.join(missing)} "
                                 f"(see magnetkit.interfaces.{contract.__name__})")
        if self.rescorer is not None and missing_members(self.rescorer, Rescorer):
            raise UsageError(f"the rescorer {type(self.rescorer).__name__} lacks "
                             f"{', '.join(missing_members(self.rescorer, Rescorer))} (see magnetkit.interfaces.Rescorer)")

    @torch.no_grad()
    def generate(self, batch: int, num_frames: int, steps: Sequence[int], guidance: Guidance,
                 known: Known | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Generate [B, K, T'] codes, T' = the scheduler's usable length of ``num_frames``."""
        config = self.model.config
        device = guidance.condition.device
        if len(steps) != config.num_codebooks:
            raise UsageError(f"decoding_steps has {len(steps)} entries; the model has "
                             f"{config.num_codebooks} codebooks")
        self.sampler.check_stages(config.num_codebooks)
        T = self.scheduler.usable_frames(num_frames)
        codes, known = self._initial_codes(batch, T, known, device)
        start_scores = initial_scores(None if known is None else known.frames, batch, T,
                                      self.scheduler.num_units(T), device)
        to_generate = int((start_scores != KEEP_SCORE).sum(-1).max())  # the loop's only host sync
        if to_generate == 0:
            raise UsageError("nothing to generate: every frame is already given")
        cross_cache = self.condition_cache(guidance.condition)
        done, total = 0, sum(steps)
        for stage, num_steps in enumerate(steps):
            scores = start_scores
            for plan in plan_stage(self.scheduler, guidance, num_steps, to_generate):
                scores = self._step(codes, stage, plan, num_steps, scores, guidance, known, cross_cache, generator)
                done += 1
                if self.callback is not None:
                    self.callback(done, total)
        return codes

    def _initial_codes(self, batch: int, T: int, known: Known | None,
                       device: torch.device) -> tuple[torch.Tensor, Known | None]:
        """All-masked codes [B, K, T] with the known frames filled in, and ``known`` cut to T."""
        config = self.model.config
        codes = torch.full((batch, config.num_codebooks, T), config.mask_id, dtype=torch.long, device=device)
        if known is None:
            return codes, None
        known = Known(known.codes[..., :T].to(device), known.frames[:, :T].to(device))
        codes = torch.where(known.frames[:, None], known.codes, codes)
        # Checked once here, so the forwards need not read the codes back at every step.
        if codes.min() < 0 or codes.max() > config.mask_id:
            raise UsageError(f"known codes must lie in [0, {config.mask_id}]")
        return codes, known

    def _step(self, codes: torch.Tensor, stage: int, plan: StepPlan, num_steps: int, scores: torch.Tensor,
              guidance: Guidance, known: Known | None, cross_cache: list | None,
              generator: torch.Generator | None) -> torch.Tensor:
        """One decoding step of one stage, in place on ``codes`` [B, K, T]; returns the new unit scores."""
        T = codes.shape[-1]
        mask_id = self.model.config.mask_id

        # 1. mask: re-mask the least confident units at this step's rate
        token_mask = self.scheduler.decode_mask(scores, plan.num_masked, T)  # [B, T]
        stage_tokens = codes[:, stage].masked_fill(token_mask, mask_id)
        if known is not None:
            stage_tokens = torch.where(known.frames, known.codes[:, stage], stage_tokens)
        codes[:, stage] = stage_tokens

        # 2-3. forward, guidance and sampling: at every position, or only where units are generated
        logits, coefficient = self._forward(codes, stage, plan.coefficient, guidance, cross_cache)
        if self._masked_only(codes.device):
            tokens, probs = self._sample_positions(logits, coefficient, token_mask, stage, plan.step, num_steps,
                                                   generator)
        else:
            guided = logits if coefficient is None else guide(logits, codes.shape[0], coefficient)  # [B, T, card]
            tokens, probs = self._sample(guided, stage, plan.step, num_steps, generator)  # [B, T], [B, T]
        still_masked = stage_tokens == mask_id
        codes[:, stage] = torch.where(still_masked, tokens, stage_tokens)
        if self.rescorer is not None and self.rescorer.weight < 1 and self.rescorer.applies(stage, plan.step):
            rescored = self.rescorer.token_probs(codes, guidance.texts)[:, stage].to(probs)
            probs = self.rescorer.weight * probs + (1 - self.rescorer.weight) * rescored  # paper Eq. 5
        generated = units_generated(token_mask, still_masked, scores.shape[-1])
        return self.scheduler.unit_scores(probs, self.sampler.span_scoring).masked_fill(~generated, KEEP_SCORE)

    # -- the transformer call ------------------------------------------------------------------
    def _forward(self, codes: torch.Tensor, stage: int, coefficient: float, guidance: Guidance,
                 cross_cache: list | None) -> tuple[torch.Tensor, float | None]:
        """The stage's logits [R, T, card] and the CFG coefficient to mix them with.

        R is B (coefficient None: nothing to mix) or 2B, the null rows after the conditional ones.
        """
        B = codes.shape[0]
        if not guidance.guided:
            return self.transformer_logits(codes, stage, guidance.condition, cross_cache), None
        if coefficient == 1 and self.options.skip_unit_guidance:
            # null + (cond - null) * 1 is the conditional logits (to float rounding): skip the null rows.
            return self.transformer_logits(codes, stage, guidance.condition[:B], cache_rows(cross_cache, B)), None
        return self.transformer_logits(torch.cat([codes, codes]), stage, guidance.condition, cross_cache), coefficient

    def _sample_positions(self, logits: torch.Tensor, coefficient: float | None, positions: torch.Tensor, stage: int,
                          step: int, num_steps: int,
                          generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Guide and sample only where ``positions`` [B, T] is True -> (tokens [B, T], probabilities [B, T]).

        The sampler sees [1, N, card], a cache-sized chunk of positions at a time, so selecting,
        mixing and sampling each chunk runs from cache instead of streaming [2B, T, card] logits
        through memory once per operation. Elsewhere the tokens are 0 and the probabilities 1:
        only generated units are scored, and they lie wholly inside ``positions``.
        """
        B, T = positions.shape
        flat = logits.reshape(-1, B * T, logits.shape[-1])  # [1 or 2, B*T, card]
        index = positions.reshape(-1).nonzero()[:, 0]  # (index_select beats a boolean mask)
        tokens = torch.zeros(B, T, dtype=torch.long, device=logits.device)
        probs = torch.ones(B, T, dtype=logits.dtype, device=logits.device)
        chunks = []
        for part in index.split(max(1, POSITION_CHUNK_ENTRIES // logits.shape[-1])):
            selected = guided_at(flat, part, coefficient, self.options.cpu_kernels)
            chunks.append(self._sample(selected, stage, step, num_steps, generator))
        if chunks:
            tokens.masked_scatter_(positions, torch.cat([chunk[0] for chunk in chunks], dim=1))
            probs.masked_scatter_(positions, torch.cat([chunk[1] for chunk in chunks], dim=1).to(probs.dtype))
        return tokens, probs

    def _sample(self, logits: torch.Tensor, stage: int, step: int, num_steps: int,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The sampler's call (`magnetkit.interfaces.Sampler`): tokens and probabilities, [B, T] each."""
        return self.sampler(logits, step, num_steps, generator=generator, stage=stage)

    def _masked_only(self, device: torch.device) -> bool:
        """Whether this step guides and samples only the generated positions (see `DecodeOptions`)."""
        wanted = self.options.masked_only if self.options.masked_only is not None else device.type == "cpu"
        return wanted and self.sampler.positionwise

    def condition_cache(self, condition: torch.Tensor) -> list | None:
        """The condition's cross-attention keys/values for the whole generation (None when switched off)."""
        if not self.options.cross_cache:
            return None
        with self._autocast(condition.device):
            return self.model.cross_attention_cache(condition)

    def transformer_logits(self, codes: torch.Tensor, stage: int, condition: torch.Tensor,
                           cross_cache: list | None) -> torch.Tensor:
        """The transformer's float32 logits of ``stage`` [R, T, card] for ``codes`` [R, K, T].

        The decoder's only call into the transformer (benchmarks time it by overriding this).
        """
        stage_only = self.options.stage_only
        with self._autocast(codes.device):
            logits = self._transformer()(codes, None if cross_cache is not None else condition, stage,
                                         stage_only=stage_only, cross_cache=cross_cache,
                                         blocked_attention=self.options.blocked_attention,
                                         check_values=self.options.check_every_step)
        return (logits[:, 0] if stage_only else logits[:, stage]).float()

    def _transformer(self) -> Callable[..., torch.Tensor]:
        """The model, or its torch.compile'd version (built once per decoder; dynamo caches the graphs)."""
        if not self.options.compile:
            return self.model
        if self._compiled is None:
            settings = {"triton.cudagraphs": self.options.cuda_graphs, "freezing": self.options.compile_freeze}
            settings = {name: True for name, on in settings.items() if on}
            self._compiled = torch.compile(self.model, backend=self.options.compile_backend, options=settings or None)
        return self._compiled

    def _autocast(self, device: torch.device) -> AbstractContextManager:
        """torch.autocast at the requested precision, or nothing."""
        if self.options.autocast is None:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.options.autocast == "bf16" else torch.float16
        return torch.autocast(device.type, dtype=dtype)
