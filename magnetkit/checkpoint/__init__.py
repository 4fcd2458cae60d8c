"""Checkpoint IO: audiocraft's published MAGNeT files (read and export) and magnetkit's own folders."""

from magnetkit.checkpoint.audiocraft import (
    AudiocraftCheckpoint,
    export_audiocraft,
    load_audiocraft,
    read_audiocraft_checkpoint,
)
from magnetkit.checkpoint.native import (
    NativeCheckpoint,
    is_audiocraft_checkpoint,
    is_native_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from magnetkit.checkpoint.weights import load_weights

__all__ = [
    "AudiocraftCheckpoint",
    "NativeCheckpoint",
    "export_audiocraft",
    "is_audiocraft_checkpoint",
    "is_native_checkpoint",
    "load_audiocraft",
    "load_checkpoint",
    "load_weights",
    "read_audiocraft_checkpoint",
    "save_checkpoint",
]
