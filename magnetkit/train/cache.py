"""The token cache: a dataset encoded once by the codec, in shards, resumable and shared by later runs.

Layout of a cache folder (one per split, e.g. ``<data.cache>/train``)::

    cache.json                 the codec that made the tokens (its recipe section and shape)
    shard-00000.safetensors    codes of manifest items [0, shard_size): one int16 [K, T] tensor each
    shard-00001.safetensors    ...

Each shard is written atomically and records the fingerprints (path, size, mtime, caption) of
the items it covers, so an interrupted encoding resumes at the first missing shard, and a shard
is re-encoded only when its files changed. A file that cannot be read is recorded in its shard
as skipped, with the reason, and the dataset goes on without it. With several processes
(torchrun), process r encodes shards r, r + world, ... .
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from magnetkit.audio import read_audio
from magnetkit.checkpoint.files import atomic_write
from magnetkit.errors import AudioError, RecipeError, UsageError
from magnetkit.train.manifest import AudioItem

CACHE_FILE = "cache.json"
CACHE_FORMAT = 1


# ------------------------------------------------------------------------------ identity
@dataclass(frozen=True)
class CodecInfo:
    """What a cache's tokens are: the codec's recipe section and its token space."""

    codec: dict[str, Any]
    frame_rate: float
    num_codebooks: int
    cardinality: int

    @staticmethod
    def of(codec: Any, section: dict[str, Any]) -> "CodecInfo":
        """The info of a built codec."""
        return CodecInfo(dict(section), float(codec.frame_rate), int(codec.num_codebooks), int(codec.cardinality))


def read_info(folder: Path) -> CodecInfo | None:
    """The cache's ``cache.json``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((folder / CACHE_FILE).read_text(encoding="utf-8"))
        if data.pop("format") != CACHE_FORMAT:
            return None
        return CodecInfo(**data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_info(folder: Path, info: CodecInfo) -> None:
    """Write ``cache.json`` atomically."""
    text = json.dumps({"format": CACHE_FORMAT, **info.__dict__}, indent=2)
    atomic_write(folder / CACHE_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def check_codec(folder: Path, section: dict[str, Any]) -> None:
    """Refuse a cache made by another codec (its tokens would mean something else)."""
    info = read_info(folder)
    if info is not None and info.codec != section:
        raise RecipeError([f"data.cache: {str(folder)!r} holds tokens of codec {info.codec}, not of this "
                           f"recipe's codec {section}; choose another data.cache"])


# ---------------------------------------------------------------------------- fingerprints
def item_key(item: AudioItem) -> str:
    """A fingerprint that changes when the file or its caption changes."""
    try:
        stat = os.stat(item.path)
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime = -1, -1  # a missing file: skipped now, encoded once it appears
    record = json.dumps([item.path, size, mtime, item.caption, item.meta], sort_keys=True, default=str)
    return hashlib.sha1(record.encode("utf-8")).hexdigest()


def shard_path(folder: Path, index: int) -> Path:
    """The file of shard ``index``."""
    return folder / f"shard-{index:05d}.safetensors"


def num_shards(num_items: int, shard_size: int) -> int:
    """Shards needed for ``num_items``."""
    return math.ceil(num_items / shard_size)


def shard_metadata(path: Path) -> dict[str, Any] | None:
    """A shard's decoded metadata, or None when it is missing or unreadable."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
        return {key: json.loads(raw[key]) for key in ("expected", "items", "skipped")}
    except Exception:  # noqa: BLE001 - any unreadable shard is simply encoded again
        return None


# -------------------------------------------------------------------------------- encoding
def prepare_cache(items: Sequence[AudioItem], folder: str | Path, section: dict[str, Any],
                  make_codec: Callable[[], Any], *, shard_size: int, rank: int = 0, world: int = 1,
                  device: torch.device | str = "cpu", progress: bool = False) -> int:
    """Encode this process's missing or stale shards; return how many it wrote.

    Args:
        items: the split's items, in manifest order.
        folder: the split's cache folder (created).
        section: the recipe's resolved codec section (the cache's identity).
        make_codec: builds the codec; called only when a shard must be encoded.
        shard_size: items per shard.
        rank, world: this process among ``world``; shards are dealt round-robin.
        device: where the codec runs.
        progress: show a progress bar.
    Raises:
        RecipeError: the folder holds tokens of another codec.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_codec(folder, section)
    known = read_info(folder) is not None  # without cache.json no shard can be trusted
    todo = []
    for index in range(rank, num_shards(len(items), shard_size), world):
        chunk = items[index * shard_size:(index + 1) * shard_size]
        keys = [item_key(item) for item in chunk]
        meta = shard_metadata(shard_path(folder, index))
        if not known or meta is None or meta["expected"] != keys:
            todo.append((index, chunk, keys))
    if not todo:
        return 0
    codec = make_codec()
    write_info(folder, CodecInfo.of(codec, section))
    from tqdm import tqdm

    bar = tqdm(total=sum(len(chunk) for _, chunk, _ in todo), desc=f"encoding {folder.name}",
               unit="file", disable=not progress, dynamic_ncols=True)
    with bar:
        for index, chunk, keys in todo:
            write_shard(shard_path(folder, index), chunk, keys, codec, device, bar.update)
    return len(todo)


def write_shard(path: Path, chunk: Sequence[AudioItem], keys: list[str], codec: Any,
                device: torch.device | str, advance: Callable[[int], Any]) -> None:
    """Encode ``chunk`` and write its shard atomically; unreadable files are recorded as skipped."""
    tensors, entries, skipped = {}, [], []
    dtype = torch.int16 if codec.cardinality <= torch.iinfo(torch.int16).max else torch.int32
    for slot, (item, key) in enumerate(zip(chunk, keys)):
        try:
            codes = encode_file(codec, item, device)
        except (AudioError, UsageError) as exc:  # unreadable, empty, or too short to encode
            skipped.append({"path": item.path, "reason": str(exc)})
        else:
            tensors[str(slot)] = codes.to("cpu", dtype).contiguous()
            entries.append({"slot": slot, "key": key, "frames": int(codes.shape[-1]), "caption": item.caption})
        advance(1)
    metadata = {"expected": json.dumps(keys), "items": json.dumps(entries), "skipped": json.dumps(skipped)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def encode_file(codec: Any, item: AudioItem, device: torch.device | str) -> torch.Tensor:
    """One file's codes [K, T] (the whole file, at the codec's rate and channels).

    Raises:
        UsageError: the file cannot be read, or the codec cannot encode it (e.g. too short).
    """
    wav, _ = read_audio(item.path, sample_rate=codec.sample_rate, channels=codec.channels)  # [C, S]
    try:
        with torch.no_grad():
            codes = codec.encode(wav[None].to(device))[0]  # [K, T]
    except (RuntimeError, ValueError) as exc:
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            raise
        raise AudioError(f"codec cannot encode {item.path!r}: {str(exc).splitlines()[0]}") from None
    if codes.shape[-1] == 0:
        raise AudioError(f"audio file {item.path!r} is too short for one codec frame")
    return codes


# --------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Entry:
    """One encoded file: where its codes are and what it says."""

    shard: int
    slot: str
    frames: int
    caption: str | None


class TokenSet:
    """The encoded files of one split; codes are read lazily (memory-mapped) as crops."""

    def __init__(self, folder: Path, info: CodecInfo, entries: list[Entry], skipped: list[dict[str, str]]):
        self.folder = folder
        self.info = info
        self.entries = entries
        self.skipped = skipped  # [{"path", "reason"}] of files that could not be encoded
        self._handles: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def crop(self, index: int, start: int, length: int) -> torch.Tensor:
        """Codes [K, <= length] of entry ``index`` from frame ``start`` (int64)."""
        entry = self.entries[index]
        handle = self._handles.get(entry.shard)
        if handle is None:
            handle = self._handles[entry.shard] = safe_open(str(shard_path(self.folder, entry.shard)), "pt")
        return handle.get_slice(entry.slot)[:, start:start + length].long()


def open_tokens(items: Sequence[AudioItem], folder: str | Path, shard_size: int) -> TokenSet:
    """The cache of ``items`` in ``folder``, which must be complete (see `prepare_cache`).

    Raises:
        UsageError: a shard is missing or does not match the items (prepare the cache first).
    """
    folder = Path(folder)
    info = read_info(folder)
    entries, skipped = [], []
    for index in range(num_shards(len(items), shard_size)):
        chunk = items[index * shard_size:(index + 1) * shard_size]
        meta = shard_metadata(shard_path(folder, index))
        if info is None or meta is None or meta["expected"] != [item_key(item) for item in chunk]:
            raise UsageError(f"token cache {str(folder)!r} is incomplete or stale at shard {index}; "
                             f"run `magnetkit prepare-data` with the same recipe")
        entries += [Entry(index, str(e["slot"]), e["frames"], e["caption"]) for e in meta["items"]]
        skipped += meta["skipped"]
    return TokenSet(folder, info, entries, skipped)
