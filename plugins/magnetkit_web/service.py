"""What the web page does, without Gradio: a model cache, the page's settings as recipe
overrides, one generation request, and its files (audio, codes, spectrogram images)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from magnetkit import UsageError

log = logging.getLogger(__name__)

# The Model picker's value for the embedded default model (`magnetkit.load(None)`).
DEFAULT_MODEL = "default-model"
MAX_SAMPLES = 4  # the page has this many output slots
MODES = ("Text to audio", "Continue the audio prompt", "Infill a region of the audio prompt")

Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------------------- models
def model_choices(first: str | None = None) -> list[tuple[str, str]]:
    """The Model picker's entries as (label, value): the default model, then the shipped inference recipes.

    Args:
        first: the model the server was started with; listed (and so selectable) even when it is
            a folder or hub id rather than a shipped recipe.
    Returns:
        ``[(label, source), ...]``; training recipes are left out (they name no weights to sample).
    """
    from magnetkit import recipe_dirs

    choices = [("default model (embedded, offline)", DEFAULT_MODEL)]
    seen = {DEFAULT_MODEL}
    for folder in recipe_dirs():
        for path in sorted(Path(folder).glob("*.yaml")):
            if path.stem in seen or _is_training_recipe(path):
                continue
            seen.add(path.stem)
            choices.append((path.stem, path.stem))
    if first and first not in seen:
        choices.insert(1, (first, first))
    return choices


def _is_training_recipe(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return True  # unreadable: `magnetkit validate` reports it; the picker just leaves it out
    return not isinstance(data, dict) or "train" in data


class ModelCache:
    """Loaded pipelines by source, each loaded once; the least recently used is dropped past ``capacity``."""

    def __init__(self, device: str | None = None, capacity: int = 2):
        self.device, self.capacity = device, capacity
        self._pipelines: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()  # two requests for one new model load it once

    def get(self, source: str | None) -> Any:
        """The pipeline for ``source`` (a recipe, folder or hub id; None or DEFAULT_MODEL: the default model)."""
        from magnetkit import load

        key = (source or DEFAULT_MODEL).strip() or DEFAULT_MODEL
        if key.startswith(("/", "./", "../", "~")) and not Path(key).expanduser().exists():
            raise UsageError(f"no such folder or file: {key!r} (give a magnetkit or audiocraft checkpoint "
                             "folder, a recipe, or a hub id)")
        with self._lock:
            if key in self._pipelines:
                self._pipelines.move_to_end(key)
                return self._pipelines[key]
            log.info("loading model %s", key)
            pipeline = load(None if key == DEFAULT_MODEL else key, device=self.device)
            self._pipelines[key] = pipeline
            while len(self._pipelines) > self.capacity:
                self._pipelines.popitem(last=False)
            return pipeline

    def __contains__(self, source: str) -> bool:
        return (source or DEFAULT_MODEL) in self._pipelines


# --------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """Everything the page sends with one press of Generate."""

    prompt: str
    model: str = DEFAULT_MODEL
    negative: str = ""
    duration: float = 3.0
    samples: int | float = 1
    seed: int | float | None = None  # None or negative: random
    mode: str = MODES[0]
    audio_prompt: str | None = None  # a file path
    infill_start: float = 0.0
    infill_end: float = 1.0
    sampler: str = "top_p"
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int | float = 250
    cfg_max: float = 3.0
    cfg_min: float = 1.0
    decoding_steps: str = ""  # "40, 10, 10, 10"; empty: the recipe's

    def overrides(self) -> list[str]:
        """The sampler and guidance settings as recipe overrides (`Pipeline.with_overrides`)."""
        out = [f"sampler.name={self.sampler}", f"sampler.temperature={self.temperature}",
               f"generation.cfg_max={self.cfg_max}", f"generation.cfg_min={self.cfg_min}"]
        if self.sampler == "top_p":
            out.append(f"sampler.top_p={self.top_p}")
        if self.sampler == "top_k":
            out.append(f"sampler.top_k={_integer(self.top_k, 'Top-k')}")
        if self.decoding_steps.strip():
            out.append(f"generation.decoding_steps=[{self.decoding_steps.strip().strip('[]')}]")
        return out


def settings_from_page(values: dict[str, Any]) -> Settings:
    """The page's field values (empty ones as None or "") as `Settings`; a missing number is a readable error."""
    numbers = {"duration": "Duration", "samples": "Samples", "infill_start": "Infill start",
               "infill_end": "Infill end", "temperature": "Temperature", "top_p": "Top-p", "top_k": "Top-k",
               "cfg_max": "CFG start", "cfg_min": "CFG end"}
    out = {key: value for key, value in values.items() if key in Settings.__dataclass_fields__}
    for key, label in numbers.items():
        if key in out:
            if out[key] is None or out[key] == "":
                raise UsageError(f"{label}: give a number")
            out[key] = float(out[key])
    for key in ("prompt", "negative", "decoding_steps"):
        out[key] = out.get(key) or ""
    out["model"] = out.get("model") or DEFAULT_MODEL
    return Settings(**out)


def settings_of(pipeline: Any) -> dict[str, Any]:
    """A loaded model's own decoding settings, to fill the page's fields when it is picked."""
    recipe = pipeline.recipe
    sampler = recipe.sampler.config
    return {"duration": recipe.generation.duration, "sampler": recipe.sampler.name,
            "temperature": getattr(sampler, "temperature", 1.0), "top_p": getattr(sampler, "top_p", 0.9),
            "top_k": getattr(sampler, "top_k", 250), "cfg_max": recipe.generation.cfg_max,
            "cfg_min": recipe.generation.cfg_min,
            "decoding_steps": ", ".join(str(s) for s in recipe.generation.decoding_steps)}


def sampler_names() -> list[str]:
    """The registered samplers (top_p, top_k, greedy, and any a plugin adds)."""
    from magnetkit import get_registry

    return [spec.name for spec in get_registry().all("sampler")]


def _integer(value: Any, what: str) -> int:
    if value is None or float(value) != int(float(value)):
        raise UsageError(f"{what} must be a whole number, got {value}")
    return int(float(value))


# ---------------------------------------------------------------------------------- request
@dataclass
class Result:
    """One request's files and a one-line summary."""

    audio: list[Path]
    spectrograms: list[np.ndarray]  # [H, W, 3] uint8 images
    codes: Path
    summary: str
    files: list[Path] = field(default_factory=list)


def generate(cache: ModelCache, settings: Settings, out_dir: Path, progress: Progress | None = None) -> Result:
    """Run one request: check the settings, generate, write the audio, codes and images to ``out_dir``.

    Raises:
        MagnetkitError: any bad setting, unreadable audio prompt or model that cannot load, as one message.
    """
    samples = _integer(settings.samples, "Samples")
    if not 1 <= samples <= MAX_SAMPLES:
        raise UsageError(f"Samples must be between 1 and {MAX_SAMPLES}, got {samples}")
    if settings.mode not in MODES:
        raise UsageError(f"unknown mode {settings.mode!r}; choose one of: {', '.join(MODES)}")
    text = (settings.prompt or "").strip() or None
    if text is None and settings.mode == MODES[0]:
        raise UsageError("type a prompt (a description of the sound) first")
    seed = None if settings.seed is None or settings.seed < 0 else _integer(settings.seed, "Seed")
    pipeline = cache.get(settings.model).with_overrides(settings.overrides())
    kwargs = dict(negative=(settings.negative or "").strip() or None, seed=seed, progress=False, callback=progress)
    texts = [text] * samples
    if settings.mode == MODES[0]:
        result = _text_to_audio(pipeline, texts, settings.duration, kwargs)
    else:
        if pipeline.recipe.hybrid is not None:
            raise UsageError("an audio prompt is continued or infilled by MAGNeT alone; pick a model whose recipe "
                             "has no hybrid section")
        wav, sr = _audio_prompt(settings.audio_prompt)
        batch = wav[None].expand(samples, -1, -1)
        if settings.mode == MODES[1]:
            result = pipeline.continue_audio(batch, sr, texts, duration=settings.duration, **kwargs)
        else:
            result = pipeline.infill(batch, sr, texts, start=settings.infill_start, end=settings.infill_end, **kwargs)
    return write_result(result, out_dir)


def _text_to_audio(pipeline: Any, texts: list[str | None], duration: float, kwargs: dict[str, Any]) -> Any:
    if pipeline.recipe.hybrid is not None:  # Hybrid-MAGNeT: an autoregressive prefix, then parallel
        from magnetkit import HybridGenerator

        return HybridGenerator.from_pipeline(pipeline).generate(texts, duration=duration, **kwargs)
    return pipeline.generate(texts, duration=duration, **kwargs)


def _audio_prompt(path: str | None) -> tuple[Any, int]:
    from magnetkit import read_audio

    if not path:
        raise UsageError("continuation and infill need an Audio prompt: upload or record one")
    return read_audio(path)


def write_result(result: Any, out_dir: Path) -> Result:
    """A `Generation`'s clips as WAV files and spectrograms, and its codes [B, K, T] as one .npy file."""
    from magnetkit import write_audio

    out_dir.mkdir(parents=True, exist_ok=True)
    audio, images = [], []
    for i, clip in enumerate(result.audio):
        audio.append(write_audio(out_dir / f"sample_{i + 1}.wav", clip, result.sample_rate))
        images.append(spectrogram_image(clip.numpy(), result.sample_rate))
    codes = out_dir / "codes.npy"
    np.save(codes, result.codes.numpy())
    seconds = result.audio.shape[-1] / result.sample_rate
    summary = (f"{len(audio)} x {seconds:.2f} s at {result.sample_rate} Hz in {result.seconds:.2f} s "
               f"(real-time factor {result.real_time_factor:.2f}); codes {list(result.codes.shape)}")
    return Result(audio, images, codes, summary, files=[*audio, codes])


def new_output_dir(root: Path, keep_seconds: float = 3600.0) -> Path:
    """A fresh folder for one request's files; earlier requests' folders older than ``keep_seconds`` are deleted.

    Each request gets its own folder, so concurrent users never overwrite each other's files;
    the page serves Gradio's copies, so old folders can go.
    """
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.glob("request-*"):
        try:
            if now - old.stat().st_mtime > keep_seconds:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # another request removed it first
            pass
    return Path(tempfile.mkdtemp(prefix="request-", dir=root))


# ------------------------------------------------------------------------------ spectrogram
# Anchor colours of a dark-to-bright palette (black, purple, red, orange, pale yellow).
_PALETTE = np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], dtype=np.float64)


def spectrogram_image(wav: np.ndarray, sample_rate: int, height: int = 160, width: int = 640,
                      floor_db: float = 80.0) -> np.ndarray:
    """A log-magnitude spectrogram of ``wav`` ([C, S] or [S]) as an RGB image, low frequencies at the bottom.

    Args:
        wav: audio samples; channels are averaged.
        sample_rate: its rate (sets a ~64 ms analysis window).
        height, width: image size in pixels.
        floor_db: the range shown below the loudest bin.
    Returns:
        ``[height, width, 3]`` uint8.
    """
    mono = np.asarray(wav, dtype=np.float64).reshape(-1, np.shape(wav)[-1]).mean(axis=0)
    n_fft = 2 ** int(round(np.log2(sample_rate * 0.064)))
    hop = n_fft // 4
    if mono.size < n_fft:
        mono = np.pad(mono, (0, n_fft - mono.size))
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # [frames, bins]
    db = 10 * np.log10(np.maximum(power, 1e-12))
    level = np.clip((db - db.max() + floor_db) / floor_db, 0.0, 1.0).T[::-1]  # [bins, frames], high first
    rows = np.linspace(0, level.shape[0] - 1, height).round().astype(int)
    cols = np.linspace(0, level.shape[1] - 1, width).round().astype(int)
    level = level[rows][:, cols]
    anchors = np.linspace(0.0, 1.0, len(_PALETTE))
    rgb = np.stack([np.interp(level, anchors, _PALETTE[:, c]) for c in range(3)], axis=-1)
    return rgb.round().astype(np.uint8)
