"""The generation API: `load(SOURCE)` -> a `Pipeline` with `generate`, `continue_audio`, `infill`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch

from magnetkit.engine import Decoder, Guidance, Known, ProgressCallback
from magnetkit.errors import RecipeError, UsageError
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.recipe import Recipe


@dataclass
class Generation:
    """Generated audio and the codes it was decoded from."""

    audio: torch.Tensor  # [B, C, S]
    codes: torch.Tensor  # [B, K, T]
    sample_rate: int
    seconds: float  # wall-clock time of the generation

    @property
    def real_time_factor(self) -> float:
        """Generation time divided by the duration of one generated clip."""
        return self.seconds / (self.audio.shape[-1] / self.sample_rate)


class Pipeline:
    """A loaded system: transformer, conditioner, codec, scheduler, sampler, optional rescorer."""

    def __init__(self, recipe: Recipe, model: MagnetTransformer, conditioner: torch.nn.Module, codec: Any,
                 device: torch.device | str | None = None) -> None:
        from magnetkit.builder import build_component

        self.recipe = recipe
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.conditioner = conditioner.to(self.device).eval() if hasattr(conditioner, "to") else conditioner
        self.codec = codec.to(self.device) if isinstance(codec, torch.nn.Module) else codec
        self.scheduler = build_component(recipe, "scheduler")
        self.sampler = build_component(recipe, "sampler")
        self.rescorer = None if recipe.rescorer is None else build_component(recipe, "rescorer", pipeline=self)
        check_compatible(recipe, model, codec)

    # -- properties ---------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """Output sample rate (the codec's)."""
        return int(self.codec.sample_rate)

    @property
    def frame_rate(self) -> float:
        """Codec frames per second."""
        return float(self.codec.frame_rate)

    @property
    def window_frames(self) -> int:
        """Frames in one window: the model's training segment."""
        return int(self.model.config.segment_duration * self.frame_rate)

    # -- public API ---------------------------------------------------------------------------
    def generate(self, texts: str | Sequence[str | None] | None = None, *, duration: float | None = None,
                 num_samples: int | None = None, negative: str | Sequence[str] | None = None,
                 seed: int | None = None, progress: bool | None = None,
                 callback: ProgressCallback | None = None) -> Generation:
        """Text-to-audio (``texts=None`` with ``num_samples``: unconditional), any duration.

        Args:
            texts: one text, a list of texts (one clip each), or None for unconditional clips.
            duration: seconds (default: the recipe's ``generation.duration``); longer than the
                model's window is generated as overlapping windows, each continuing the last.
            num_samples: number of unconditional clips when ``texts`` is None.
            negative: text(s) to guide away from, instead of the null condition.
            seed: seed of the sampling generator (default: the recipe's ``generation.seed``).
            progress: show a progress bar (default: the recipe's ``generation.progress``).
            callback: ``callback(step, total)`` after every decoding step.
        Returns:
            A `Generation` with audio [B, C, S] and codes [B, K, T].
        Raises:
            UsageError: on empty text, non-positive duration, or mismatched negative prompts.
        """
        texts = normalise_texts(texts, num_samples)
        frames = self._frames(duration)
        return self._run(texts, frames, None, negative, seed, progress, callback)

    def continue_audio(self, audio: torch.Tensor, sample_rate: int, texts: str | Sequence[str | None] | None = None,
                       *, duration: float | None = None, **kwargs: Any) -> Generation:
        """Continue ``audio`` [B, C, S] (or [C, S]) to ``duration`` seconds in total."""
        prompt = self.encode(audio, sample_rate)
        texts = normalise_texts(texts, prompt.shape[0])
        frames = self._frames(duration)
        if prompt.shape[-1] >= frames:
            raise UsageError(f"the prompt ({prompt.shape[-1] / self.frame_rate:.2f} s) must be shorter than "
                             f"the requested duration ({frames / self.frame_rate:.2f} s)")
        return self.continue_codes(prompt, texts, frames=frames, **kwargs)

    def continue_codes(self, prompt: torch.Tensor, texts: Sequence[str | None], *, frames: int,
                       negative: str | Sequence[str] | None = None, seed: int | None = None,
                       progress: bool | None = None, callback: ProgressCallback | None = None) -> Generation:
        """Continue prompt codes [B, K, P] to ``frames`` frames."""
        known = Known.prefix(prompt.to(self.device), frames)
        return self._run(list(texts), frames, known, negative, seed, progress, callback)

    def infill(self, audio: torch.Tensor, sample_rate: int, texts: str | Sequence[str | None] | None = None, *,
               start: float, end: float, **kwargs: Any) -> Generation:
        """Regenerate the range [start, end) seconds of ``audio``, keeping the rest."""
        codes = self.encode(audio, sample_rate)
        T = codes.shape[-1]
        first, last = int(round(start * self.frame_rate)), int(round(end * self.frame_rate))
        if not 0 <= first < last <= T:
            raise UsageError(f"infill range [{start}, {end}) s must lie inside the audio (0 to {T / self.frame_rate:.2f} s)")
        if T > self.window_frames:
            raise UsageError(f"infill works on audio up to the model's window ({self.window_frames / self.frame_rate:.1f} s)")
        frames = torch.ones(codes.shape[0], T, dtype=torch.bool, device=self.device)
        frames[:, first:last] = False
        texts = normalise_texts(texts, codes.shape[0])
        return self._run(texts, T, Known(codes, frames), kwargs.pop("negative", None), **_run_kwargs(kwargs))

    def encode(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Audio [B, C, S] or [C, S] at ``sample_rate`` -> codes [B, K, T] at the codec's rate."""
        from magnetkit.audio import convert_audio

        if audio.dim() == 2:
            audio = audio[None]
        if audio.dim() != 3 or audio.shape[-1] == 0:
            raise UsageError(f"audio must be [B, C, S] or [C, S] with samples, got {list(audio.shape)}")
        audio = torch.stack([convert_audio(a, sample_rate, self.sample_rate, self.codec.channels) for a in audio])
        with torch.no_grad():
            return self.codec.encode(audio.to(self.device)).long()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, T] -> audio [B, C, S]."""
        with torch.no_grad():
            return self.codec.decode(codes.to(self.device)).float()

    def with_overrides(self, overrides: Iterable[str]) -> "Pipeline":
        """A pipeline sharing this one's loaded weights that decodes with other settings.

        Args:
            overrides: ``key=value`` overrides of the ``sampler``, ``scheduler`` and
                ``generation`` sections, e.g. ``sampler.temperature=2`` (the other sections need
                other weights: load the pipeline again instead).
        Returns:
            A new `Pipeline`; this one is unchanged, so one loaded model serves many settings.
        Raises:
            RecipeError: an override is invalid or names a section outside those three.
        """
        import copy

        from magnetkit.recipe import apply_overrides, validate_recipe
        from magnetkit.registry import build

        overrides = list(overrides)
        fixed = [o.partition("=")[0] for o in overrides if o.partition("=")[0].split(".")[0] not in SETTINGS_SECTIONS]
        if fixed:
            raise RecipeError([f"{key}: cannot change on a loaded model (only {', '.join(SETTINGS_SECTIONS)} "
                               "settings can); load it again with this override" for key in fixed])
        recipe = validate_recipe(apply_overrides(self.recipe.to_dict(), overrides))
        check_compatible(recipe, self.model, self.codec)
        other = copy.copy(self)
        other.recipe = recipe
        other.scheduler = build("scheduler", recipe.scheduler.name, recipe.scheduler.config)
        other.sampler = build("sampler", recipe.sampler.name, recipe.sampler.config)
        return other

    # -- internals ----------------------------------------------------------------------------
    def _frames(self, duration: float | None) -> int:
        duration = self.recipe.generation.duration if duration is None else duration
        if not duration > 0:
            raise UsageError(f"duration must be > 0 seconds, got {duration}")
        return max(int(duration * self.frame_rate), 1)

    def _run(self, texts: list[str | None], frames: int, known: Known | None,
             negative: str | Sequence[str] | None, seed: int | None = None, progress: bool | None = None,
             callback: ProgressCallback | None = None) -> Generation:
        started = time.perf_counter()
        generation = self.recipe.generation
        seed = generation.seed if seed is None else seed
        generator = torch.Generator(self.device).manual_seed(random.randrange(2**63) if seed is None else seed)
        guidance = self.guidance(texts, negative)
        windows = num_windows(frames, self.window_frames, self.overlap_frames)
        with ProgressBar(self._show_progress(progress), sum(generation.decoding_steps) * windows, callback) as bar:
            decoder = Decoder(self.model, self.scheduler, self.sampler, self.rescorer, bar.step)
            codes = self._decode_windows(decoder, len(texts), frames, guidance, known, generator)
        audio = self.decode(codes)
        return Generation(audio.cpu(), codes.cpu(), self.sample_rate, time.perf_counter() - started)

    def _decode_windows(self, decoder: Decoder, batch: int, frames: int, guidance: Guidance,
                        known: Known | None, generator: torch.Generator) -> torch.Tensor:
        """One window, or overlapping windows each continuing the end of the last."""
        steps = self.recipe.generation.decoding_steps
        window, overlap = self.window_frames, self.overlap_frames
        out = decoder.generate(batch, min(frames, window), steps, guidance, slice_known(known, 0, window), generator)
        while frames > window and out.shape[-1] < frames:
            start = out.shape[-1] - overlap
            end = min(start + window, frames)
            if self.scheduler.usable_frames(end - start) <= overlap:  # less than one span left: done
                break
            carried = Known.prefix(out[..., start:], end - start)
            given = slice_known(known, start, end)
            codes = decoder.generate(batch, end - start, steps, guidance,
                                     carried if given is None else merge_known(given, carried), generator)
            out = torch.cat([out[..., :start], codes], dim=-1)
        return out

    @property
    def overlap_frames(self) -> int:
        """Frames carried over from one window to the next."""
        overlap = int(self.recipe.generation.window_overlap * self.frame_rate)
        return min(max(overlap, 1), self.window_frames // 2)

    def guidance(self, texts: list[str | None], negative: str | Sequence[str] | None) -> Guidance:
        """The condition batch: texts then null conditions (or negative prompts), in one forward."""
        gen = self.recipe.generation
        with torch.no_grad():
            if all(t is None for t in texts) and negative is None:  # unconditional: nothing to guide
                return Guidance(self.conditioner(texts).embeddings, cfg_max=gen.cfg_max, cfg_min=gen.cfg_min,
                                guided=False, texts=texts)
            others = normalise_negative(negative, len(texts))
            condition = self.conditioner(list(texts) + others).embeddings
        return Guidance(condition, cfg_max=gen.cfg_max, cfg_min=gen.cfg_min, texts=texts)

    def _show_progress(self, progress: bool | None) -> bool:
        return self.recipe.generation.progress if progress is None else progress


# ----------------------------------------------------------------------------- helpers
# Recipe sections `Pipeline.with_overrides` may change: they configure decoding, not weights.
SETTINGS_SECTIONS = ("sampler", "scheduler", "generation")


def normalise_texts(texts: str | Sequence[str | None] | None, num_samples: int | None) -> list[str | None]:
    """A list of texts; None = unconditional. Empty strings are refused (say None instead)."""
    if texts is None:
        return [None] * (num_samples or 1)
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise UsageError("give at least one text (or None for unconditional generation)")
    for text in texts:
        if text is not None and not str(text).strip():
            raise UsageError("a text prompt is empty; give a description, or use unconditional generation")
    return texts


def normalise_negative(negative: str | Sequence[str] | None, batch: int) -> list[str | None]:
    """Negative prompts for each row (one is repeated), or null conditions."""
    if negative is None:
        return [None] * batch
    items = [negative] * batch if isinstance(negative, str) else list(negative)
    if len(items) != batch:
        raise UsageError(f"give one negative prompt or one per text ({batch}), got {len(items)}")
    if any(not str(n).strip() for n in items):
        raise UsageError("a negative prompt is empty")
    return items


def num_windows(frames: int, window: int, overlap: int) -> int:
    """How many windows of ``window`` frames, overlapping by ``overlap``, cover ``frames``."""
    if frames <= window:
        return 1
    return 1 + -(-(frames - window) // (window - overlap))


def slice_known(known: Known | None, start: int, end: int) -> Known | None:
    """The part of ``known`` inside frames [start, end), or None if nothing there is given."""
    if known is None or not known.frames[:, start:end].any():
        return None
    return Known(known.codes[..., start:end], known.frames[:, start:end])


def merge_known(a: Known, b: Known) -> Known:
    """Frames given by either (``b`` wins where both give them)."""
    codes = torch.where(b.frames[:, None], b.codes, a.codes)
    return Known(codes, a.frames | b.frames)


def _run_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - {"seed", "progress", "callback"}
    if unknown:
        raise UsageError(f"unexpected argument(s): {', '.join(sorted(unknown))}")
    return kwargs


def check_compatible(recipe: Recipe, model: MagnetTransformer, codec: Any) -> None:
    """The codec's token space and the recipe's steps must fit the transformer."""
    config = model.config
    problems = []
    if codec.num_codebooks != config.num_codebooks:
        problems.append(f"codec: {codec.num_codebooks} codebooks, but the model has {config.num_codebooks}")
    if codec.cardinality != config.cardinality:
        problems.append(f"codec: cardinality {codec.cardinality}, but the model has {config.cardinality}")
    if abs(float(codec.frame_rate) - config.frame_rate) > 1e-3 * config.frame_rate:
        problems.append(f"codec: {float(codec.frame_rate):g} frames/s, but the model was trained at {config.frame_rate:g}")
    steps = recipe.generation.decoding_steps
    if len(steps) != config.num_codebooks:
        problems.append(f"generation.decoding_steps: {len(steps)} entries, but the model has "
                        f"{config.num_codebooks} codebooks (one number of steps per codebook)")
    if problems:
        raise RecipeError(problems)


class ProgressBar:
    """A tqdm bar over decoding steps that also forwards to a user callback."""

    def __init__(self, show: bool, total: int, callback: ProgressCallback | None):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc="decoding", unit="step", disable=not show, leave=False)
        self._callback, self._done, self._total = callback, 0, total

    def step(self, _done: int, _total: int) -> None:
        """Advance one decoding step."""
        self._done += 1
        self._bar.update(1)
        if self._callback is not None:
            self._callback(self._done, self._total)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
