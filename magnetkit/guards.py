"""Checks at the public boundary: arguments, devices, and what plugin components return.

Each check raises one typed error whose message names the argument (or the plugin), so a wrong
type or value fails where it is given instead of deep inside the engine, or silently.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import torch

from magnetkit.errors import PluginError, UsageError

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit integer; the recipe's range too
# Text encoders such as T5 attend over every token pair without truncating (as audiocraft), so
# memory grows with the square of a text's length: 80,000 characters were killed for memory on a
# 23 GB machine. Captions are tens to hundreds of characters; this bound leaves ample room.
MAX_TEXT_CHARS = 4096


# ------------------------------------------------------------------------------ arguments
def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UsageError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_number(value: Any, name: str, *, positive: bool = False) -> float:
    """A finite real number (not a bool), > 0 when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, got {value}")
    if positive and value <= 0:
        raise UsageError(f"{name} must be > 0, got {value:g}")
    return value


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """None, or an integer seed in [0, 2**63 - 1]."""
    return None if seed is None else check_int(seed, name, minimum=0, maximum=SEED_MAX)


def check_optional_bool(value: Any, name: str) -> bool | None:
    """None or a bool (1/0 or "yes" are refused: they are usually a mistake)."""
    if value is not None and not isinstance(value, bool):
        raise UsageError(f"{name} must be True, False or None, got {type(value).__name__} {value!r}")
    return value


def check_callback(callback: Any) -> Any:
    """None or a callable ``callback(step, total)``."""
    if callback is not None and not callable(callback):
        raise UsageError(f"callback must be a callable callback(step, total), got {type(callback).__name__}")
    return callback


def check_texts(texts: Any, name: str = "texts") -> list[str | None]:
    """One text or a sequence of texts (None = unconditional); bytes and other types are refused."""
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise UsageError(f"{name} must be str or a list of str, got bytes (decode it first, e.g. "
                         f"{name}.decode('utf-8'))")
    if not isinstance(texts, Sequence):
        raise UsageError(f"{name} must be str, a list of str or None, got {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if text is not None and not isinstance(text, str):
            raise UsageError(f"{name}[{i}] must be str or None, got {type(text).__name__} {text!r}")
        if text is not None and not _encodable(text):
            raise UsageError(f"{name}[{i}] is not valid Unicode text (it holds lone surrogates, as undecodable "
                             f"bytes give): pass UTF-8 text")
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise UsageError(f"{name}[{i}] is {len(text)} characters long; at most {MAX_TEXT_CHARS} (a text "
                             f"encoder's memory grows with the square of the text's length)")
    return out


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_audio(audio: Any, sample_rate: Any) -> tuple[torch.Tensor, int]:
    """A float tensor [B, C, S] or [C, S] (numpy arrays are converted) with samples, and its rate."""
    if not isinstance(audio, torch.Tensor):
        try:
            import numpy as np

            if not isinstance(audio, np.ndarray):
                raise TypeError
            audio = torch.from_numpy(audio)
        except TypeError:
            raise UsageError(f"audio must be a torch.Tensor [B, C, S] or [C, S], got {type(audio).__name__}") from None
    if audio.dim() not in (2, 3) or audio.shape[-1] == 0:
        raise UsageError(f"audio must be [B, C, S] or [C, S] with samples, got {list(audio.shape)}")
    if not audio.is_floating_point():
        raise UsageError(f"audio must hold float samples in [-1, 1], got {audio.dtype}")
    if not bool(torch.isfinite(audio).all()):
        raise UsageError("audio contains NaN or infinite samples")
    return audio, check_int(sample_rate, "sample_rate", minimum=1)


# ------------------------------------------------------------------------------- devices
def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to run on; a device this torch build or machine lacks is a UsageError.

    Raises:
        UsageError: an unknown device string, CUDA on a CPU-only build or without a GPU, or a GPU
            index beyond those present.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise UsageError(f"device must be a str such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"device {str(device)!r} is not a device: use cpu, cuda, cuda:1, ...") from None
    if device.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise UsageError(f"device {str(device)!r}: this torch build ({torch.__version__}) has no CUDA support; "
                             f"use --device cpu, or install a CUDA build of torch")
        if not torch.cuda.is_available():
            raise UsageError(f"device {str(device)!r}: no CUDA GPU is visible to torch; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {str(device)!r}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"device {str(device)!r} is not supported: use cpu, cuda or mps")
    return device


def memory_bytes(device: torch.device) -> int:
    """Memory a generation's output may take on ``device``: the physical RAM, or a GPU's free memory."""
    try:
        host = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        host = 64 * 2**30
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return min(host, free)
    return host


# ------------------------------------------------------------------------------- plugins
def plugin_of(component: Any) -> str:
    """The name of the plugin that provides ``component`` (its top-level package, matched to the plugins)."""
    from magnetkit.plugins import pm

    root = type(component).__module__.split(".")[0]
    for name, module in pm.list_name_plugin():
        if getattr(module, "__name__", "").split(".")[0] == root:
            return name
    return root


def describe_component(kind: str, component: Any) -> str:
    """``codec SpecCodec (plugin 'speccodec')``: how an error names a component."""
    return f"{kind} {type(component).__name__} (plugin {plugin_of(component)!r})"


def check_output(kind: str, component: Any, what: str, value: Any, dims: int, shape: Sequence[int | None],
                 *, integer: bool | None = None) -> torch.Tensor:
    """A component's returned tensor must have ``dims`` dimensions and the sizes ``shape`` gives (None: any).

    Raises:
        PluginError: naming the component's plugin, what it returned and what the contract asks.
    """
    where = describe_component(kind, component)
    if not isinstance(value, torch.Tensor):
        raise PluginError(f"{where}: {what} must return a torch.Tensor, got {type(value).__name__}")
    got = tuple(value.shape)
    if value.dim() != dims or any(want is not None and want != size for want, size in zip(shape, got)):
        wanted = "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
        raise PluginError(f"{where}: {what} returned shape {list(got)}, the contract asks for {wanted}")
    if integer is True and value.is_floating_point():
        raise PluginError(f"{where}: {what} must return integer codes, got {value.dtype}")
    if integer is False and not value.is_floating_point():
        raise PluginError(f"{where}: {what} must return float values, got {value.dtype}")
    return value
