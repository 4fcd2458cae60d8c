"""Training checkpoints: folders that appear whole or not at all, the last N kept.

``<out_dir>/checkpoints/step-0001000/`` holds

* ``model.safetensors`` + ``recipe.yaml``: a magnetkit checkpoint of the weights the run exports
  (the EMA when there is one), so ``magnetkit generate <folder> "text"`` works on any of them;
* ``state.pt``: the training state as a plain dict (model, optimizer, LR schedule, loss scaler,
  EMA, step, data position, each process's RNG state, the resolved recipe), read back with
  ``torch.load(weights_only=True)``.

A folder is written under a temporary name, flushed to disk, then renamed: a run killed at any
moment leaves the previous checkpoints intact and never a half-written one.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from magnetkit.errors import CheckpointError

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "state.pt"
STATE_FORMAT = "magnetkit-train-1"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_dir(out_dir: str | os.PathLike, step: int) -> Path:
    """Where the checkpoint of ``step`` goes."""
    return Path(out_dir) / CHECKPOINTS_DIR / f"step-{step:07d}"


def list_checkpoints(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    folder = Path(out_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def newest_readable(out_dir: str | os.PathLike, set_aside: bool = True) -> tuple[Path | None, dict[str, Any] | None,
                                                                             list[str]]:
    """(folder, state) of the newest checkpoint that reads back, and a message for each one skipped.

    A checkpoint that cannot be read (a corrupt or truncated ``state.pt``) is renamed
    ``step-N.corrupt`` when ``set_aside`` (the main process), so it is neither resumed from nor
    counted among the ``keep_last`` that pruning keeps, and can still be inspected.
    """
    skipped = []
    for _step, folder in reversed(list_checkpoints(out_dir)):
        try:
            state = load_state(folder)
        except CheckpointError as exc:
            aside = folder.with_name(folder.name + ".corrupt")
            if set_aside:
                shutil.rmtree(aside, ignore_errors=True)
                os.replace(folder, aside)
            skipped.append(f"checkpoint {str(folder)!r} is unreadable ({exc}); set aside as "
                           f"{aside.name!r}, resuming from the previous one")
            continue
        return folder, state, skipped
    return None, None, skipped


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def write_folder(target: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_folder)``, flush everything to disk, then rename the folder to ``target``.

    Raises:
        CheckpointError: the folder could not be written (disk full, no permission); nothing at
            ``target`` or beside it was changed, and the temporary folder is removed.
    """
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        for path in tmp.iterdir():
            _fsync(path)
        _fsync(tmp)
    except BaseException as exc:  # an interrupt too: never leave the temporary folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(exc, OSError) and not (isinstance(exc, Exception) and _write_failure(exc)):
            raise
        reason = "the disk is full" if _disk_full(exc) else (getattr(exc, "strerror", None) or str(exc))
        raise CheckpointError(f"cannot write {str(target)!r}: {reason}; nothing was replaced (earlier checkpoints "
                              f"are intact). Free some space and run the same command again to resume") from None
    try:
        if target.exists():  # the same step written again (a resumed run that had finished)
            shutil.rmtree(target)
        os.replace(tmp, target)
        _fsync(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_failure(exc: BaseException) -> bool:
    """torch.save and safetensors report a failed write as RuntimeError/other types wrapping the OS error."""
    return _disk_full(exc) or "writ" in str(exc).lower()


def _disk_full(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(out_dir: str | os.PathLike) -> None:
    """Delete temporary folders of checkpoints that a killed run did not finish."""
    folder = Path(out_dir) / CHECKPOINTS_DIR
    if folder.is_dir():
        for path in folder.glob(".step-*.tmp-*"):
            shutil.rmtree(path, ignore_errors=True)


def prune(out_dir: str | os.PathLike, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints."""
    for _, path in list_checkpoints(out_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def save_state(folder: Path, state: dict[str, Any]) -> None:
    """Write the training state dict into a checkpoint folder being assembled."""
    torch.save({"format": STATE_FORMAT, **state}, folder / STATE_FILE)


def load_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The training state of a checkpoint folder (tensors and plain data only).

    Raises:
        CheckpointError: the file is missing, unreadable, or not a magnetkit training state.
    """
    path = Path(folder) / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is one line for the user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot read training state {str(path)!r}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a magnetkit training state ({STATE_FORMAT})")
    return state
