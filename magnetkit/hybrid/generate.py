"""Hybrid generation (paper §3.4): the first seconds autoregressively, the rest by MAGNeT in parallel.

Two modes, chosen by the recipe's ``hybrid`` section:

* two models: ``hybrid.autoregressive`` names an autoregressive model over the same token space
  (MusicGen); its prefix becomes MAGNeT's prompt (`Pipeline.continue_codes`);
* one model: without it, the MAGNeT transformer itself, trained with the hybrid objective
  (`magnetkit.hybrid.objective`), decodes its causal prefix and then the rest.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from magnetkit.engine import Decoder, ProgressCallback
from magnetkit.errors import UsageError
from magnetkit.hybrid.autoregressive import AutoregressiveModel, check_token_space, decode_prefix
from magnetkit.hybrid.config import HybridConfig
from magnetkit.hybrid.pattern import delayed_columns, prefix_block
from magnetkit.hybrid.single import MagnetSession, PrefixedModel, PrefixedRescorer
from magnetkit.pipeline import Generation, Pipeline, ProgressBar, normalise_negative, normalise_texts


@dataclass
class HybridGeneration(Generation):
    """A `Generation` whose first ``prefix_frames`` frames were decoded autoregressively."""

    prefix: torch.Tensor  # [B, K, P]: the autoregressive codes, equal to codes[..., :P]
    autoregressive_seconds: float  # wall-clock time of the autoregressive part

    @property
    def prefix_frames(self) -> int:
        """P, the number of autoregressive frames."""
        return self.prefix.shape[-1]


class HybridGenerator:
    """Hybrid-MAGNeT generation over a loaded `Pipeline`."""

    def __init__(self, pipeline: Pipeline, config: HybridConfig | None = None,
                 autoregressive: AutoregressiveModel | None = None) -> None:
        """Use ``autoregressive`` (two models), or the pipeline's own transformer when it is None (one model)."""
        self.pipeline = pipeline
        self.config = config or pipeline.recipe.hybrid or HybridConfig()
        self.autoregressive = autoregressive
        if autoregressive is None and self.config.autoregressive is not None:
            raise UsageError(f"the hybrid section names an autoregressive model ({self.config.autoregressive.name!r}): "
                             "build with HybridGenerator.from_pipeline, or load_hybrid")
        if autoregressive is not None:
            if not isinstance(autoregressive, AutoregressiveModel):
                raise UsageError(f"{type(autoregressive).__name__} cannot decode a prefix autoregressively "
                                 "(it does not implement magnetkit.hybrid.AutoregressiveModel)")
            model = pipeline.model.config
            check_token_space(autoregressive, pipeline.codec, model.num_codebooks, model.cardinality,
                              where="hybrid.autoregressive")

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, config: HybridConfig | None = None) -> HybridGenerator:
        """Build the autoregressive model the ``hybrid`` section names (if any) next to ``pipeline``."""
        from magnetkit.registry import get_registry

        config = config or pipeline.recipe.hybrid
        if config is None:
            raise UsageError("the recipe has no hybrid section; add one (e.g. hybrid.prefix_seconds=3) "
                             "or use Pipeline.generate")
        section = config.autoregressive
        if section is None:
            return cls(pipeline, config)
        spec = get_registry().get("rescorer", section.name)
        # The rescorer factory context (magnetkit.interfaces): ``role`` lets its errors name this section.
        model = spec.build(section.config, pipeline=pipeline, role="hybrid.autoregressive")
        if not isinstance(model, AutoregressiveModel):
            raise UsageError(f"hybrid.autoregressive: {section.name!r} can rescore but cannot decode a prefix "
                             "autoregressively")
        return cls(pipeline, config, model)

    # -- public API ---------------------------------------------------------------------------
    def generate(self, texts: str | Sequence[str | None] | None = None, *, duration: float | None = None,
                 prefix_seconds: float | None = None, num_samples: int | None = None,
                 negative: str | Sequence[str] | None = None, seed: int | None = None,
                 progress: bool | None = None, callback: ProgressCallback | None = None) -> HybridGeneration:
        """Generate: ``prefix_seconds`` autoregressively, then the rest in parallel.

        Args:
            texts: one text, a list (one clip each), or None with ``num_samples`` (unconditional).
            duration: seconds in total (default: the recipe's ``generation.duration``).
            prefix_seconds: autoregressive seconds (default: the recipe's ``hybrid.prefix_seconds``).
            num_samples: number of unconditional clips when ``texts`` is None.
            negative: text(s) to guide away from, in both parts.
            seed: seeds both parts (default: the recipe's ``generation.seed``, else random).
            progress: progress bar over MAGNeT's decoding steps.
            callback: ``callback(step, total)`` after every MAGNeT decoding step.
        Returns:
            A `HybridGeneration`: codes [B, K, T] whose first P frames are ``prefix``.
        Raises:
            UsageError: when the prefix does not leave room for a parallel part, or (one model)
                the duration exceeds the model's window.
        """
        started = time.perf_counter()
        texts = normalise_texts(texts, num_samples)
        pipe = self.pipeline
        duration = pipe.recipe.generation.duration if duration is None else duration
        prefix_seconds = self.config.prefix_seconds if prefix_seconds is None else prefix_seconds
        if not duration > 0 or not prefix_seconds > 0:
            raise UsageError(f"duration and prefix_seconds must be > 0, got {duration} and {prefix_seconds}")
        frames = max(int(duration * pipe.frame_rate), 1)
        prefix_frames = max(round(prefix_seconds * pipe.frame_rate), 1)
        if prefix_frames >= frames:
            raise UsageError(f"the autoregressive prefix ({prefix_seconds:g} s) must be shorter than the "
                             f"duration ({duration:g} s)")
        seed = pipe.recipe.generation.seed if seed is None else seed
        seed = random.randrange(2**63) if seed is None else seed
        generator = torch.Generator(pipe.device).manual_seed(seed)
        if self.autoregressive is not None:
            return self._two_models(texts, frames, prefix_frames, negative, seed, generator, progress, callback,
                                    started)
        return self._one_model(texts, frames, prefix_frames, negative, generator, progress, callback, started)

    # -- the two modes ------------------------------------------------------------------------
    def _two_models(self, texts: list[str | None], frames: int, prefix_frames: int,
                    negative: str | Sequence[str] | None, seed: int, generator: torch.Generator,
                    progress: bool | None, callback: ProgressCallback | None, started: float) -> HybridGeneration:
        """MusicGen (or another autoregressive model) decodes the prefix; MAGNeT continues it."""
        batch = len(texts)
        guided = self.config.cfg_coef != 1 and not (negative is None and all(t is None for t in texts))
        rows = list(texts) + (normalise_negative(negative, batch) if guided else [])
        model = self.autoregressive
        session = model.start(rows)
        prefix = decode_prefix(session, batch, prefix_frames, model.num_codebooks, model.cardinality, self.config,
                               guided, generator, device=self.pipeline.device)
        autoregressive_seconds = time.perf_counter() - started
        out = self.pipeline.continue_codes(prefix, texts, frames=frames, negative=negative, seed=seed,
                                           progress=progress, callback=callback)
        return HybridGeneration(out.audio, out.codes, out.sample_rate, time.perf_counter() - started,
                                prefix.cpu(), autoregressive_seconds)

    def _one_model(self, texts: list[str | None], frames: int, prefix_frames: int,
                   negative: str | Sequence[str] | None, generator: torch.Generator, progress: bool | None,
                   callback: ProgressCallback | None, started: float) -> HybridGeneration:
        """The transformer decodes its causal prefix token by token, then the rest in parallel."""
        pipe = self.pipeline
        if frames > pipe.window_frames:
            raise UsageError(f"single-model hybrid generation is limited to the model's window "
                             f"({pipe.window_frames / pipe.frame_rate:g} s)")
        rest = pipe.scheduler.usable_frames(frames - prefix_frames)
        if rest < 1:
            raise UsageError("the autoregressive prefix leaves no whole span for the parallel part; "
                             "shorten hybrid.prefix_seconds or lengthen the duration")
        batch, config = len(texts), pipe.model.config
        guidance = pipe.guidance(texts, negative)
        guided = guidance.guided and self.config.cfg_coef != 1
        condition = guidance.condition if guided else guidance.condition[:batch]
        session = MagnetSession(pipe.model, condition, delayed_columns(prefix_frames, config.num_codebooks))
        prefix = decode_prefix(session, batch, prefix_frames, config.num_codebooks, config.mask_id, self.config,
                               guided, generator, device=pipe.device)
        autoregressive_seconds = time.perf_counter() - started

        # The parallel part: the ordinary engine behind the finished prefix block.
        model = PrefixedModel(pipe.model, prefix_block(prefix, config.mask_id))
        rescorer = None if pipe.rescorer is None else PrefixedRescorer(pipe.rescorer, prefix)
        steps = pipe.recipe.generation.decoding_steps
        show = pipe.recipe.generation.progress if progress is None else progress
        with ProgressBar(show, sum(steps), callback) as bar:
            decoder = Decoder(model, pipe.scheduler, pipe.sampler, rescorer, bar.step)
            suffix = decoder.generate(batch, frames - prefix_frames, steps, guidance, None, generator)
        codes = torch.cat([prefix, suffix], dim=-1)
        audio = pipe.decode(codes)
        return HybridGeneration(audio.cpu(), codes.cpu(), pipe.sample_rate, time.perf_counter() - started,
                                prefix.cpu(), autoregressive_seconds)


def load_hybrid(source: str, overrides: Iterable[str] = (), *, device: str | torch.device | None = None
                ) -> HybridGenerator:
    """Load a recipe (or checkpoint) with a ``hybrid`` section, ready for hybrid generation.

    Raises:
        UsageError: when the recipe has no ``hybrid`` section.
        RecipeError: when its models do not share a token space.
    """
    from magnetkit.loading import load

    pipeline = load(source, overrides, device=device)
    if pipeline.recipe.hybrid is None:
        raise UsageError(f"{source!r} has no hybrid section; add one (e.g. the override hybrid.prefix_seconds=3) "
                         "or see the recipes/*-hybrid-*.yaml examples")
    return HybridGenerator.from_pipeline(pipeline)
