"""Retraining the embedded demo model from scratch: data, caption encoder, the ``demo-train`` recipe, install."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch

from magnetkit import UsageError
from magnetkit_demo.config import CAPTION_LAYERS, DemoData

RECIPE = "demo-train"  # recipes/demo-train.yaml
MODEL_DIR, CAPTIONS_DIR, CODEC_DIR = "model", "caption-t5", "speccodec"
TRAINING_FILE = "training.json"  # provenance of the installed model: data, steps, time


@dataclass
class DemoRun:
    """What a finished demo training left behind, and how long it took."""

    model: Path
    caption_encoder: Path
    codec: Path
    train_seconds: float  # training steps as the run's log timed them (`magnetkit.training_seconds`)
    steps: int
    threads: int
    data: DemoData


def _manifest_lines(folder: Path) -> int:
    manifest = folder / "manifest.jsonl"
    return sum(1 for _ in manifest.open()) if manifest.is_file() else 0


DATA_SETTINGS = "settings.json"  # out/data/settings.json: the DemoData the clips were written with
# What clips were written with before a setting could be chosen (and so before it was recorded).
UNRECORDED = {"timing": "free", "arpeggio": "varied", "kit": "varied"}


def synthesise(out: Path, data: DemoData, progress: Callable[[str], None]) -> tuple[Path, Path]:
    """The train and valid splits under ``out/data`` (kept when a folder already holds that many clips).

    Raises:
        UsageError: ``out/data`` holds clips written with other settings (the token cache and a
            resumed training would mix them).
    """
    from magnetkit_synth.dataset import write_dataset

    settings = out / "data" / DATA_SETTINGS
    recorded = json.loads(settings.read_text()) if settings.is_file() else None
    if recorded is None and any(_manifest_lines(out / "data" / split) for split in ("train", "valid")):
        recorded = {**asdict(data), **UNRECORDED}  # written before any setting was recorded
    elif recorded is not None:
        recorded = {**UNRECORDED, **recorded}  # settings added since it was written had their old value
    if recorded is not None and recorded != asdict(data):
        changed = ", ".join(f"{key} {recorded.get(key)!r} -> {value!r}" for key, value in asdict(data).items()
                            if recorded.get(key) != value)
        raise UsageError(f"{out / 'data'} holds clips written with other settings ({changed}); "
                         "use a new working folder")
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(asdict(data), indent=2) + "\n")
    folders = {}
    for split, clips in (("train", data.train_clips), ("valid", data.valid_clips)):
        if clips <= 0:
            raise UsageError(f"the {split} split needs a positive number of clips, got {clips}")
        folder = out / "data" / split
        # validation captions name every attribute in the base vocabulary
        omit = data.omit_attributes if split == "train" else 0.0
        augment = data.augment_captions if split == "train" else 0.0
        if _manifest_lines(folder) == clips:
            progress(f"{split}: reusing {clips} clips in {folder}")
        else:
            started = time.perf_counter()
            write_dataset(folder, clips, data.seed, split, omit_attributes=omit, augment_captions=augment,
                          **data.style)
            progress(f"{split}: wrote {clips} clips to {folder} ({time.perf_counter() - started:.0f} s)")
        folders[split] = folder
    return folders["train"], folders["valid"]


def train_demo(out: str | Path, data: DemoData = DemoData(), overrides: Iterable[str] = (),
               progress: Callable[[str], None] = print, caption_layers: int = CAPTION_LAYERS) -> DemoRun:
    """Synthesise the data, build the caption encoder, train the ``demo-train`` recipe in ``out``.

    Args:
        out: working folder (data/, caption-t5/, tokens/, train/); a rerun resumes training.
        data: how many clips to synthesise.
        overrides: ``key=value`` overrides of the recipe (they win over the folder layout).
        progress: called with one line per phase.
        caption_layers: layers of the random caption encoder (0: each word encodes alone).

    Returns:
        The finished run.

    Raises:
        UsageError, RecipeError: bad counts or overrides, or ``out`` holds a caption encoder of
            another depth.
    """
    from magnetkit import load_recipe, read_items, train_model, training_seconds
    from magnetkit_speccodec.codec import SHIPPED

    from magnetkit_demo.captions import build_caption_encoder

    out = Path(out)
    captions = out / CAPTIONS_DIR
    built = captions / "config.json"
    if built.is_file() and (layers := json.loads(built.read_text())["num_layers"]) != caption_layers:
        raise UsageError(f"{captions} holds a caption encoder of {layers} layers, not {caption_layers}; "
                         "use a new working folder")
    train_dir, valid_dir = synthesise(out, data, progress)
    if not built.is_file():
        build_caption_encoder([item.caption for item in read_items(train_dir) if item.caption], captions,
                              num_layers=caption_layers)
        progress(f"caption encoder: {captions}")
    layout = [f"data.train={train_dir}", f"data.valid={valid_dir}", f"data.cache={out / 'tokens'}",
              f"conditioner.model={captions}", f"train.out_dir={out / 'train'}"]
    overrides = [*layout, *overrides]
    recipe = load_recipe(RECIPE, overrides)
    started = time.perf_counter()
    model = train_model(RECIPE, overrides)
    # the run's own log: a finished run called again (to --install it) trains nothing in this call
    seconds = training_seconds(recipe.train.out_dir) or time.perf_counter() - started
    codec = Path(recipe.codec.config.model) if getattr(recipe.codec.config, "model", None) else SHIPPED
    return DemoRun(model=Path(model), caption_encoder=captions, codec=codec, train_seconds=seconds,
                   steps=recipe.train.steps, threads=torch.get_num_threads(), data=data)


def point_at_assets(recipe_file: Path) -> None:
    """Make the installed model's own recipe name the codec and caption encoder beside it (../x)."""
    import yaml

    recipe = yaml.safe_load(recipe_file.read_text())
    recipe["codec"]["model"] = f"../{CODEC_DIR}"
    recipe["conditioner"]["model"] = f"../{CAPTIONS_DIR}"
    recipe_file.write_text(yaml.safe_dump(recipe, sort_keys=False))


def codec_fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of each codec file: the tokens the model learned are those of exactly these codebooks."""
    return {name: hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest()
            for name in ("speccodec.json", "speccodec.safetensors")}


def install(run: DemoRun, assets: Path | None = None) -> Path:
    """Copy the model, its caption encoder and the codec it was trained with into the plugin's assets.

    The codec is copied, not referenced: the model's tokens mean something only for the very
    codebooks it was trained on, so refitting the speccodec plugin's own codec must not change it.
    """
    from magnetkit_demo import ASSETS

    assets = Path(assets or ASSETS)
    for name, source, files in ((MODEL_DIR, run.model, ("model.safetensors", "recipe.yaml")),
                                (CAPTIONS_DIR, run.caption_encoder, None),
                                (CODEC_DIR, run.codec, ("speccodec.json", "speccodec.safetensors"))):
        target = assets / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for path in sorted(Path(source).iterdir()):
            if path.is_file() and path.name != "__init__.py" and (files is None or path.name in files):
                shutil.copy2(path, target / path.name)
        # setuptools ships data files only inside packages: each asset folder is one.
        (target / "__init__.py").write_text(f'"""Data only: the {name} of the embedded default model."""\n')
    point_at_assets(assets / MODEL_DIR / "recipe.yaml")
    info = {"train_seconds": round(run.train_seconds, 1), "steps": run.steps, "threads": run.threads,
            "data": asdict(run.data), "recipe": RECIPE, "codec_sha256": codec_fingerprint(assets / CODEC_DIR)}
    (assets / TRAINING_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return assets
