"""Finding weights: a local folder or file, or a hub id resolved from the local cache.

With no network every miss becomes one `HubUnavailableError` line that says what to download
or which local folder to pass instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from magnetkit.errors import CheckpointError, HubUnavailableError

T = TypeVar("T")


def looks_like_hub_id(source: str) -> bool:
    """``owner/name`` or ``name`` that is not an existing path."""
    return not Path(source).expanduser().exists() and source.count("/") <= 1 and not source.startswith((".", "/", "~"))


def _unavailable(source: str, what: str) -> HubUnavailableError:
    return HubUnavailableError(
        f"{what} {source!r} is not a local path and is not in the Hugging Face cache, and the hub "
        f"cannot be reached: download it (`huggingface-cli download {source}`) on a machine with "
        f"network, or pass a local folder instead"
    )


def local_path(source: str | os.PathLike, filename: str | None = None, *, what: str = "model") -> Path:
    """A local path for ``source``: the path itself, or the cached hub snapshot (of ``filename``)."""
    path = Path(source).expanduser()
    if path.exists():
        if filename is not None and path.is_dir():
            target = path / filename
            if not target.exists():
                raise CheckpointError(f"{what} folder {str(path)!r} has no {filename}")
            return target
        return path
    source = str(source)
    if not looks_like_hub_id(source):
        raise CheckpointError(f"{what} path {source!r} does not exist")
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if filename is not None:
            return Path(hf_hub_download(source, filename))
        return Path(snapshot_download(source))
    except Exception as exc:  # offline, not cached, or no such repository
        if _offline_error(exc):
            raise _unavailable(source, what) from exc
        raise CheckpointError(f"could not fetch {what} {source!r} from the hub: {_first_line(exc)}") from exc


def from_pretrained(loader: Callable[..., T], source: str | os.PathLike, *, what: str = "model", **kwargs: Any) -> T:
    """Call a transformers ``from_pretrained`` with one clear line on failure."""
    path = Path(source).expanduser()
    target = str(path) if path.exists() else str(source)
    if not path.exists() and not looks_like_hub_id(str(source)):
        raise CheckpointError(f"{what} path {str(source)!r} does not exist")
    _quiet_transformers()
    try:
        return loader(target, **kwargs)
    except Exception as exc:
        if not path.exists() and _offline_error(exc):
            raise _unavailable(str(source), what) from exc
        raise CheckpointError(f"could not load {what} from {target!r}: {_first_line(exc)}") from exc


def load_complete(model_class: Any, source: str | os.PathLike, *, what: str = "model", **kwargs: Any) -> Any:
    """``model_class.from_pretrained`` that refuses a checkpoint with missing or mis-shaped weights.

    transformers only warns about them and fills them with random values (e.g. when a folder of
    another model type is passed), which must never load silently.
    """
    def load(target: str):
        return model_class.from_pretrained(target, output_loading_info=True, **kwargs)

    model, info = from_pretrained(load, source, what=what)
    params = dict(model.named_parameters())
    missing = sorted(k for k in (info.get("missing_keys") or ()) if k in params)
    missing += sorted(str(k) for k in (info.get("mismatched_keys") or ()))
    if missing:
        raise CheckpointError(f"{what} {str(source)!r} is not a complete checkpoint: {len(missing)} weight(s) "
                              f"missing or mis-shaped, e.g. {missing[0]}")
    return model


def _quiet_transformers() -> None:
    """No per-tensor "Loading weights" bars: magnetkit reports its own progress."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _offline_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    markers = ("offline", "connection", "not find", "couldn't find", "cannot find", "localentrynotfound",
               "we couldn't connect", "does not appear to have", "not a local folder", "is not a valid model identifier")
    return any(m in text for m in markers)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
