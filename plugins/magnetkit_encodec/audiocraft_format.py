"""audiocraft's ``compression_state_dict.bin``, mapped onto transformers' ``EncodecModel``.

The file comes in two published forms: a pointer ``{'pretrained': 'facebook/encodec_32khz'}``
(resolved by the caller like any hub id) and a full audiocraft-trained EnCodec
(``xp.cfg`` YAML + ``best_state``), as the sound MAGNeT models ship. The second is rebuilt as a
transformers ``EncodecModel`` with every weight: both are the same SEANet + LSTM + RVQ network,
laid out module for module in the same order, so only names and config keys change.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from magnetkit import CheckpointError

_INTERPOLATION = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")

# SEANet settings transformers' EncodecConfig has a field for: audiocraft name -> transformers name.
_SEANET_FIELDS = {
    "dimension": "hidden_size",
    "n_filters": "num_filters",
    "n_residual_layers": "num_residual_layers",
    "ratios": "upsampling_ratios",
    "kernel_size": "kernel_size",
    "last_kernel_size": "last_kernel_size",
    "residual_kernel_size": "residual_kernel_size",
    "dilation_base": "dilation_growth_rate",
    "causal": "use_causal_conv",
    "pad_mode": "pad_mode",
    "compress": "compress",
    "lstm": "num_lstm_layers",
}
_SUPPORTED_NORMS = ("weight_norm", "time_group_norm", "none")


def read_package(file: Path) -> dict[str, Any]:
    """``torch.load`` a compression package safely (tensors and plain data only)."""
    try:
        pkg = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # unsafe pickle, truncated zip, not a torch file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load codec checkpoint {str(file)!r}: {first}") from exc
    if not isinstance(pkg, dict):
        raise CheckpointError(f"codec checkpoint {str(file)!r} is a {type(pkg).__name__}, not audiocraft's dict")
    return pkg


def pointer_name(pkg: dict[str, Any], file: Path) -> str | None:
    """The model a pointer package names (``{'pretrained': name}``), or None for a full codec."""
    if "pretrained" not in pkg:
        return None
    name = pkg["pretrained"]
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"codec checkpoint {str(file)!r} has a 'pretrained' entry that is not a name: {name!r}")
    if name.startswith("dac_"):
        raise CheckpointError(f"codec checkpoint {str(file)!r} points to {name!r}, a DAC codec: use codec 'dac' "
                              f"with model 'descript/{name}'")
    return name


def build_from_package(pkg: dict[str, Any], file: Path):
    """A transformers ``EncodecModel`` holding the full audiocraft codec of ``pkg``."""
    from transformers import EncodecModel

    if "xp.cfg" not in pkg or "best_state" not in pkg:
        raise CheckpointError(f"codec checkpoint {str(file)!r} is neither a 'pretrained' pointer nor an audiocraft "
                              f"EnCodec ('xp.cfg' + 'best_state'); keys: {sorted(map(str, pkg))}")
    config = encodec_config(_parse_cfg(pkg["xp.cfg"], file), file)
    state = pkg["best_state"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a solver checkpoint rather than an exported one
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"codec checkpoint {str(file)!r}: 'best_state' is not a dict of tensors")
    model = EncodecModel(config)
    load_weights(model, state, file)
    return model.eval()


# ------------------------------------------------------------------------------- config
def _parse_cfg(raw: Any, file: Path) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise CheckpointError(f"codec checkpoint {str(file)!r}: 'xp.cfg' is not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"codec checkpoint {str(file)!r}: 'xp.cfg' is not a mapping")
    return raw


class _Cfg:
    """Read access to an audiocraft config that resolves its ``${a.b}`` interpolations."""

    def __init__(self, root: dict[str, Any], file: Path):
        self.root, self.file = root, file

    def get(self, dotted: str, default: Any = KeyError) -> Any:
        node: Any = self.root
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is KeyError:
                    raise CheckpointError(f"codec checkpoint {str(self.file)!r}: 'xp.cfg' has no {dotted!r}")
                return default
            node = self.resolve(node[part])
        return node

    def resolve(self, value: Any, depth: int = 0) -> Any:
        if depth > 20:
            raise CheckpointError(f"codec checkpoint {str(self.file)!r}: 'xp.cfg' interpolations loop")
        if isinstance(value, str):
            match = _INTERPOLATION.match(value.strip())
            if match:
                return self.resolve(self.get(match.group(1)), depth + 1)
            if value == "???":
                return None
            return value
        if isinstance(value, dict):
            return {k: self.resolve(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, depth + 1) for v in value]
        return value


def encodec_config(raw: dict[str, Any], file: Path):
    """transformers ``EncodecConfig`` for an audiocraft config; refuses what it cannot express."""
    from transformers import EncodecConfig

    cfg = _Cfg(raw, file)
    where = f"codec checkpoint {str(file)!r}"

    def refuse(what: str) -> CheckpointError:
        return CheckpointError(f"{where}: {what}, which transformers' EncodecModel cannot represent")

    for key, expected in (("compression_model", "encodec"), ("encodec.autoencoder", "seanet"),
                          ("encodec.quantizer", "rvq")):
        if cfg.get(key) != expected:
            raise refuse(f"{key} is {cfg.get(key)!r} (only {expected!r} maps)")

    seanet = dict(cfg.get("seanet"))
    enc = {**seanet, **(seanet.pop("encoder", None) or {})}
    dec = {**seanet, **(seanet.pop("decoder", None) or {})}
    enc.pop("decoder", None), dec.pop("encoder", None)
    for side, params in (("encoder", enc), ("decoder", dec)):
        activation, activation_params = params.get("activation", "ELU"), params.get("activation_params") or {}
        if activation != "ELU" or activation_params not in ({}, {"alpha": 1.0}):
            raise refuse(f"seanet {side} activation is {activation} {activation_params}")
        if params.get("norm", "none") not in _SUPPORTED_NORMS:
            raise refuse(f"seanet {side} norm is {params.get('norm')!r}")
        if params.get("norm_params") or {}:
            raise refuse(f"seanet {side} norm_params are {params.get('norm_params')}")
        if params.get("disable_norm_outer_blocks", 0) and params.get("norm", "none") != "none":
            raise refuse(f"seanet {side} disable_norm_outer_blocks is {params.get('disable_norm_outer_blocks')}")
        if int(params.get("lstm", 0)) < 1:
            raise refuse(f"seanet {side} has no LSTM (lstm: {params.get('lstm', 0)})")
    if dec.get("final_activation") is not None:
        raise refuse(f"seanet decoder final_activation is {dec.get('final_activation')!r}")
    for key in (*_SEANET_FIELDS, "norm", "true_skip", "channels"):
        if enc.get(key) != dec.get(key):
            raise refuse(f"seanet encoder and decoder differ in {key} ({enc.get(key)!r} vs {dec.get(key)!r})")

    missing = [k for k in (*_SEANET_FIELDS, "norm", "true_skip") if dec.get(k) is None]
    if missing:
        raise CheckpointError(f"{where}: 'xp.cfg' seanet has no {', '.join(missing)}")
    ratios = [int(r) for r in dec["ratios"]]
    sample_rate = int(cfg.get("encodec.sample_rate", None) or cfg.get("sample_rate"))
    channels = int(cfg.get("encodec.channels", None) or cfg.get("channels"))
    n_q, bins = int(cfg.get("rvq.n_q")), int(cfg.get("rvq.bins"))
    if bins < 2 or bins & (bins - 1):
        raise refuse(f"rvq.bins is {bins} (a power of two is required)")
    if channels not in (1, 2):
        raise refuse(f"it has {channels} audio channels")
    hop = math.prod(ratios)
    kwargs = {hf: dec[ac] for ac, hf in _SEANET_FIELDS.items()}
    kwargs.update(
        upsampling_ratios=ratios,
        use_causal_conv=bool(dec["causal"]),
        norm_type="time_group_norm" if dec["norm"] == "time_group_norm" else "weight_norm",
        use_conv_shortcut=not bool(dec["true_skip"]),
        trim_right_ratio=float(dec.get("trim_right_ratio", 1.0)),
        sampling_rate=sample_rate,
        audio_channels=channels,
        normalize=bool(cfg.get("encodec.renormalize", False) or False),
        chunk_length_s=None,
        overlap=None,
        codebook_size=bins,
        codebook_dim=int(dec["dimension"]),
        target_bandwidths=[_bandwidth_for(n_q, sample_rate, hop, bins)],
    )
    for key in ("hidden_size", "num_filters", "num_residual_layers", "kernel_size", "last_kernel_size",
                "residual_kernel_size", "dilation_growth_rate", "compress", "num_lstm_layers"):
        kwargs[key] = int(kwargs[key])
    try:
        config = EncodecConfig(**kwargs)
    except Exception as exc:
        raise refuse(f"its settings are rejected ({str(exc).splitlines()[0]})") from exc
    config.audiocraft_norm = dec["norm"]  # how the weights were stored ("none" = plain conv weights)
    return config


def _bandwidth_for(n_q: int, sample_rate: int, hop: int, bins: int) -> float:
    """The bandwidth at which transformers' RVQ uses exactly ``n_q`` codebooks."""
    frame_rate = math.ceil(sample_rate / hop)  # transformers' (rounded-up) frame rate
    bits = math.ceil(math.log2(bins))
    bandwidth = n_q * frame_rate * bits / 1000
    # EncodecConfig.num_quantizers floors 1000 * bandwidth // (frame_rate * bits): step past a
    # float round-down (2.2 * 1000 is 2200.0000000000005, but other products land just below).
    while int(1000 * bandwidth // (frame_rate * bits)) < n_q:
        bandwidth = math.nextafter(bandwidth, math.inf)
    return bandwidth


# ------------------------------------------------------------------------------ weights
_RENAMES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(encoder|decoder)\.model\.(\d+)\."), r"\1.layers.\2."),
    (re.compile(r"\.(conv\.conv|convtr\.convtr)\.weight_g$"), ".conv.parametrizations.weight.original0"),
    (re.compile(r"\.(conv\.conv|convtr\.convtr)\.weight_v$"), ".conv.parametrizations.weight.original1"),
    (re.compile(r"\.(conv\.conv|convtr\.convtr)\.(weight|bias)$"), r".conv.\2"),
    (re.compile(r"\.(conv|convtr)\.norm\.(weight|bias)$"), r".norm.\2"),
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\."), r"quantizer.layers.\1.codebook."),
]


def transformers_name(name: str) -> str:
    """audiocraft EnCodec tensor name -> transformers ``EncodecModel`` tensor name."""
    for pattern, replacement in _RENAMES:
        name = pattern.sub(replacement, name)
    return name


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], file: Path) -> None:
    """Load an audiocraft EnCodec ``best_state`` into ``model``, checking every name and shape."""
    expected = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        new = transformers_name(name)
        base = new[: -len("weight")] + "parametrizations.weight."
        if new.endswith(".conv.weight") and base + "original0" in expected:
            # A conv stored without weight norm (norm: none): as g = ||w|| and v = w, weight norm
            # computes g * v / ||v|| with the same kernel as the norm, i.e. w itself, bit for bit.
            mapped[base + "original0"] = torch.norm_except_dim(tensor, 2, 0)
            mapped[base + "original1"] = tensor
        else:
            mapped[new] = tensor
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    wrong = [k for k in set(expected) & set(mapped) if expected[k].shape != mapped[k].shape]
    problems = ([f"missing {k}" for k in missing[:3]] + [f"unexpected {k}" for k in unexpected[:3]]
                + [f"{k} is {tuple(mapped[k].shape)}, expected {tuple(expected[k].shape)}" for k in sorted(wrong)[:3]])
    if problems:
        count = len(missing) + len(unexpected) + len(wrong)
        raise CheckpointError(f"codec checkpoint {str(file)!r} does not match its own xp.cfg as an EncodecModel "
                              f"({count} problem(s), e.g. {'; '.join(problems)})")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in mapped.items()}, strict=True)
