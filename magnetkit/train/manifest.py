"""Training data listings: a JSONL manifest, or a folder of audio files with sidecar ``.json`` captions.

A manifest line is ``{"path": ..., "caption": ..., <any other metadata>}``; a relative path is
relative to the manifest's folder. A folder without ``manifest.jsonl`` is scanned for audio
files; ``song.wav`` takes its caption from ``song.json`` as audiocraft's music datasets do
(``description``, or ``caption``). A file without a caption trains the null condition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magnetkit.errors import UsageError

MANIFEST_NAME = "manifest.jsonl"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
CAPTION_KEYS = ("caption", "description")  # magnetkit's name first, then audiocraft's


@dataclass(frozen=True)
class AudioItem:
    """One training file: its absolute path, caption and free-form metadata."""

    path: str
    caption: str | None
    meta: dict[str, Any] = field(default_factory=dict)


def read_items(source: str | Path) -> list[AudioItem]:
    """Every item of a manifest file, a folder holding ``manifest.jsonl``, or a folder of audio.

    Raises:
        UsageError: the source does not exist, a manifest line is not a record, or nothing is listed.
    """
    path = Path(source).expanduser()
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        path = path / MANIFEST_NAME
    if path.is_file():
        items = read_manifest(path)
    elif path.is_dir():
        items = scan_folder(path)
    else:
        raise UsageError(f"{str(source)!r} is neither a manifest file nor a folder")
    if not items:
        raise UsageError(f"{str(source)!r} lists no audio files")
    return items


def read_manifest(path: Path) -> list[AudioItem]:
    """Items of a JSONL manifest; blank lines are ignored."""
    items = []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{line_no}: not a JSON line ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("path"), str):
            raise UsageError(f"{path}:{line_no}: a manifest record needs a \"path\" string")
        items.append(_item(path.parent / record.pop("path"), record))
    return items


def scan_folder(folder: Path) -> list[AudioItem]:
    """Audio files under ``folder`` (sorted), captioned by their sidecar ``.json`` when present."""
    items = []
    for audio in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        sidecar = audio.with_suffix(".json")
        record: dict[str, Any] = {}
        if sidecar.is_file():
            try:
                record = json.loads(_read_text(sidecar))
            except json.JSONDecodeError as exc:
                raise UsageError(f"{sidecar}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise UsageError(f"{sidecar}: a sidecar must hold a JSON object")
        items.append(_item(audio, record))
    return items


def _read_text(path: Path) -> str:
    """A UTF-8 text file; unreadable or non-UTF-8 content is a UsageError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start}); save the manifest as UTF-8") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None


def _item(path: Path, record: dict[str, Any]) -> AudioItem:
    caption = next((record.pop(key) for key in CAPTION_KEYS if isinstance(record.get(key), str)), None)
    caption = caption.strip() if caption else None
    return AudioItem(path=str(path.resolve()), caption=caption or None, meta=record)
