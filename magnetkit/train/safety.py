"""What keeps a training run from losing work: the output folder's lock, divergence, resume settings.

* One run per ``train.out_dir``: ``<out_dir>/.lock`` holds the owner's host and pid; a lock whose
  process is gone (a killed run) is taken over, one whose process lives is refused.
* The out_dir is checked writable before any work (encoding tokens can take hours).
* Nothing non-finite is ever checkpointed: a NaN loss or weight stops the run with "diverged at
  step N", and the checkpoints already written (all finite) are kept.
* A resume compares the settings it was started with to the checkpoint's: those the run can
  honour are applied and logged, the others refused with the reason.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import torch

from magnetkit.batch import make_out_dir
from magnetkit.errors import MagnetkitError, RecipeError, UsageError

LOCK_FILE = ".lock"


class TrainingDiverged(MagnetkitError):
    """The loss or the weights became NaN or infinite; nothing non-finite was saved."""


# ------------------------------------------------------------------------------ out_dir
def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed and make sure this process can write there.

    Raises:
        UsageError: out_dir (or a parent) is a file, or the folder cannot be written.
    """
    path = Path(out_dir).expanduser()
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"train.out_dir {str(out_dir)!r}: {str(parent)!r} is a file, not a folder")
    make_out_dir(path, "train.out_dir")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _read_lock(lock: Path) -> tuple[str, int] | None:
    try:
        host, _, pid = lock.read_text(encoding="utf-8").strip().partition(":")
        return host, int(pid)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


@contextlib.contextmanager
def run_lock(out_dir: str | os.PathLike, log: Any = print) -> Iterator[Path]:
    """Hold ``<out_dir>/.lock`` for the duration of a run; a stale lock (dead process) is taken over.

    Raises:
        UsageError: another live process on this host holds the lock (or one on another host does).
    """
    path = check_out_dir(out_dir)
    lock = path / LOCK_FILE
    me = f"{socket.gethostname()}:{os.getpid()}"
    for _attempt in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_lock(lock)
            if owner is not None and owner[1] == os.getpid() and owner[0] == socket.gethostname():
                raise UsageError(f"train.out_dir {str(out_dir)!r} is already used by this process") from None
            if owner is not None and (owner[0] != socket.gethostname() or _alive(owner[1])):
                raise UsageError(f"train.out_dir {str(out_dir)!r} is in use by another run (pid {owner[1]} on "
                                 f"{owner[0]}); wait for it, or choose another train.out_dir. If that run is "
                                 f"gone, delete {str(lock)!r}") from None
            why = "unreadable" if owner is None else f"pid {owner[1]} is gone"
            log(f"taking over a stale lock {str(lock)!r} ({why})")
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        except OSError as exc:
            raise UsageError(f"train.out_dir {str(out_dir)!r}: cannot create its lock file: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(me)
        break
    else:
        raise UsageError(f"train.out_dir {str(out_dir)!r}: cannot take the lock {str(lock)!r}")
    try:
        yield lock
    finally:
        if _read_lock(lock) == (socket.gethostname(), os.getpid()):
            with contextlib.suppress(OSError):
                lock.unlink()


# ------------------------------------------------------------------------------ divergence
def first_nonfinite(window: list[dict[str, Any]], last_step: int) -> int | None:
    """The step (1-based, as logged) of the first non-finite loss or gradient norm in ``window``."""
    for offset, metrics in enumerate(window):
        if not all(math.isfinite(float(metrics[key])) for key in ("loss", "grad_norm") if key in metrics):
            return last_step - len(window) + offset + 1
    return None


def nonfinite_tensors(state: dict[str, Any]) -> list[str]:
    """Names of floating tensors in a (nested) state dict that hold NaN or infinite values."""
    bad = []
    for name, value in state.items():
        if isinstance(value, dict):
            bad += [f"{name}.{inner}" for inner in nonfinite_tensors(value)]
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad.append(name)
    return bad


def diverged(step: int, what: str, out_dir: Path) -> TrainingDiverged:
    """The error a diverged run stops with."""
    return TrainingDiverged(f"training diverged at step {step}: {what}; nothing was saved from it (the earlier "
                            f"checkpoints in {out_dir} are kept). Lower train.lr, raise train.warmup_steps or use "
                            f"train.precision=bf16, then run again to resume from the last good checkpoint")


# ------------------------------------------------------------------------------ resume
# Settings a resume applies from the command line (each read afresh by the loop or re-applied
# to the optimizer); every other one that differs from the checkpoint's is refused.
APPLIED = {"steps", "stage_weights", "lr", "lr_min_ratio", "warmup_steps", "betas", "weight_decay",
           "max_grad_norm", "cfg_dropout", "continuation_masking", "ema_every", "precision", "distributed",
           "device", "save_every", "keep_last", "log_every", "valid_every", "valid_items", "generate_every",
           "sample_texts", "num_samples", "tensorboard", "progress", "export_audiocraft", "grad_accum",
           "out_dir", "init_from"}
REFUSED_WHY = {
    "batch_size": "the data position and the loss normalisation are counted in rows of the global batch",
    "seed": "the data order, crops, masks and codebook stages are drawn from it: a new seed is a new run",
    "ema_decay": "the EMA saved in the checkpoint was averaged with the old decay",
}


def resume_changes(saved: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(applied, refused): ``train.*`` and ``data.train`` settings that differ from the checkpoint's recipe."""
    applied, refused = [], []
    old_train, new_train = saved.get("train") or {}, current.get("train") or {}
    for key in sorted(set(old_train) | set(new_train)):
        old, new = old_train.get(key), new_train.get(key)
        if _same(old, new):
            continue
        change = f"train.{key}: {old!r} -> {new!r}"
        if key in APPLIED or (key not in old_train and key not in REFUSED_WHY):
            applied.append(change)
        else:
            why = REFUSED_WHY.get(key, "a resumed run cannot honour a change of it")
            refused.append(f"{change} ({why})")
    old_data, new_data = (saved.get("data") or {}).get("train"), (current.get("data") or {}).get("train")
    if old_data is not None and not _same(old_data, new_data):
        refused.append(f"data.train: {old_data!r} -> {new_data!r} (the token stream position counts rows of the "
                       f"old data)")
    return applied, refused


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_resume(saved: dict[str, Any], current: dict[str, Any], folder: Path) -> list[str]:
    """The applied changes (to log); refused ones raise.

    Raises:
        RecipeError: a changed setting the resume cannot honour (with how to proceed).
    """
    applied, refused = resume_changes(saved, current)
    if refused:
        raise RecipeError([f"{change}; to resume {str(folder)!r} keep the checkpoint's value, or start a new "
                           f"run in another train.out_dir" for change in refused])
    return applied


def apply_optimizer_settings(optimizer: torch.optim.Optimizer, lr_schedule: Any, config: Any) -> None:
    """After loading a checkpoint: the current lr, betas and weight decay, not the saved ones."""
    for group in optimizer.param_groups:
        group["initial_lr"] = config.lr
        group["betas"] = tuple(config.betas)
        group["weight_decay"] = config.weight_decay
    lr_schedule.base_lrs = [config.lr for _ in optimizer.param_groups]
    factors = [fn(lr_schedule.last_epoch) for fn in lr_schedule.lr_lambdas]
    for group, factor in zip(optimizer.param_groups, factors):
        group["lr"] = config.lr * factor
