"""audiocraft's MAGNeT checkpoints: read ``state_dict.bin`` safely, map ``xp.cfg``, export back.

An audiocraft LM checkpoint is ``torch.save({'best_state': {name: tensor}, 'xp.cfg': <YAML>,
'version': str, 'exported': True})``. Its tensor names are ours except that audiocraft nests the
layers under ``transformer.`` and keeps the conditioner's learned projection under
``condition_provider.conditioners.description.``. The config is mapped onto ``ModelConfig`` and
recipe sections; any setting magnetkit does not implement is refused by name, so a checkpoint
either loads exactly or not at all.
"""

from __future__ import annotations

import copy
import os
import pickle
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError
from torch import nn

from magnetkit.checkpoint.files import atomic_write
from magnetkit.checkpoint.weights import load_weights, module_state
from magnetkit.errors import CheckpointError
from magnetkit.hub import local_path, looks_like_hub_id
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer

LM_FILE = "state_dict.bin"
CODEC_FILE = "compression_state_dict.bin"
AUDIOCRAFT_VERSION = "1.3.0"  # the audiocraft release whose format this module reads and writes
CONDITIONER_PREFIX = "condition_provider.conditioners.description."
LAYERS_PREFIX = "transformer.layers."  # audiocraft's name for our ``layers.``
TEMPLATE = Path(__file__).with_name("audiocraft_xp_cfg.yaml")
# audiocraft's T5Conditioner accepts only these names (T5Conditioner.MODELS).
AUDIOCRAFT_T5_NAMES = ("t5-small", "t5-base", "t5-large", "t5-3b", "t5-11b", "google/flan-t5-small",
                       "google/flan-t5-base", "google/flan-t5-large", "google/flan-t5-xl", "google/flan-t5-xxl")
AUDIOCRAFT_NORM_EPS = 1e-5  # audiocraft's create_norm_fn and norm_cross hard-code it


@dataclass(frozen=True)
class AudiocraftCheckpoint:
    """An audiocraft MAGNeT LM checkpoint, mapped onto magnetkit's names and configuration."""

    source: str  # what the user passed: a folder, a state_dict.bin, or a hub id
    path: Path  # the local state_dict.bin
    model_config: ModelConfig
    recipe: dict[str, dict[str, Any]]  # recipe sections: model, conditioner, codec, scheduler
    model_state: dict[str, torch.Tensor]  # MagnetTransformer names, as stored (fp32 or fp16)
    conditioner_state: dict[str, torch.Tensor]  # the conditioner's learned weights (output_proj)
    xp_cfg: dict[str, Any]  # the training config, parsed, interpolations left as written
    version: str | None


# ------------------------------------------------------------------------------ safe reading
def read_package(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``; anything that could execute code is refused."""
    path = Path(path)
    try:
        package = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(exc)
        if "GLOBAL" in reason:
            # weights_only=True rebuilds only tensors and plain containers; a global it refuses
            # (a __reduce__ payload such as os.system, or a custom class) is what could run code.
            raise CheckpointError(
                f"refusing to load {str(path)!r}: it pickles objects other than tensors and plain containers, "
                f"which could execute code ({reason})"
            ) from None
        raise CheckpointError(f"{str(path)!r} is not a readable torch checkpoint: {reason}") from None
    except Exception as exc:
        raise CheckpointError(f"{str(path)!r} is not a readable torch checkpoint: {_first_line(exc)}") from None
    if not isinstance(package, dict):
        raise CheckpointError(f"{str(path)!r} holds a {type(package).__name__}, not an audiocraft checkpoint dict")
    return package


def parse_xp_cfg(text: str) -> dict[str, Any]:
    """The ``xp.cfg`` YAML string as a dict; ``${...}`` and ``???`` stay as written."""
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CheckpointError(f"xp.cfg is not valid YAML: {_first_line(exc)}") from None
    if not isinstance(cfg, dict):
        raise CheckpointError("xp.cfg is not a YAML mapping")
    return cfg


_ABSENT = object()


def cfg_value(cfg: Mapping[str, Any], option: str, default: Any = _ABSENT) -> Any:
    """``cfg[option]`` for a dotted ``option``, following whole-value ``${other.option}`` references."""
    return _cfg_value(cfg, option, default, depth=0)


def _cfg_value(cfg: Mapping[str, Any], option: str, default: Any, depth: int) -> Any:
    node: Any = cfg
    for part in option.split("."):
        if not isinstance(node, Mapping) or part not in node:
            if default is _ABSENT:
                raise CheckpointError(f"xp.cfg has no {option}")
            return default
        node = node[part]
    if node == "???":
        raise CheckpointError(f"xp.cfg {option} is ??? (never set)")
    if isinstance(node, str) and "${" in node:
        target = node[2:-1] if node.startswith("${") and node.endswith("}") else ""
        if not target or "${" in target or ":" in target or depth > 8:
            raise CheckpointError(f"xp.cfg {option} = {node!r} needs an interpolation magnetkit does not resolve")
        return _cfg_value(cfg, target, _ABSENT, depth + 1)
    return node


# ------------------------------------------------------------------------ supported settings
@dataclass(frozen=True)
class _Setting:
    option: str
    default: Any  # audiocraft's constructor default when the key is absent
    accepts: Callable[[Any], bool]
    expected: str


def _is(*values: Any) -> Callable[[Any], bool]:
    """Accept exactly these values, of the same type (so ``1`` is not ``True``)."""
    return lambda value: any(type(value) is type(v) and value == v for v in values)


# Everything here changes what the network computes; magnetkit implements one value of each.
# Training-only knobs (weight_init, emb_lr, checkpointing, ...) and kernel choices
# (memory_efficient, custom, attention_as_float32) do not change the maths and are ignored.
SUPPORTED_SETTINGS: tuple[_Setting, ...] = (
    _Setting("lm_model", None, _is("transformer_lm_magnet"), "transformer_lm_magnet"),
    _Setting("transformer_lm.causal", False, _is(False), "false (MAGNeT is non-causal)"),
    _Setting("transformer_lm.norm_first", False, _is(True), "true (pre-norm)"),
    _Setting("transformer_lm.norm", "layer_norm", _is("layer_norm"), "layer_norm"),
    _Setting("transformer_lm.positional_embedding", "sin", _is("sin"), "sin"),
    _Setting("transformer_lm.positional_scale", 1.0,
             lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, "a positive number"),
    _Setting("transformer_lm.layer_scale", None, _is(None), "null"),
    _Setting("transformer_lm.qk_layer_norm", False, _is(False), "false"),
    _Setting("transformer_lm.qk_layer_norm_cross", False, _is(False), "false"),
    _Setting("transformer_lm.kv_repeat", 1, _is(1), "1"),
    _Setting("transformer_lm.activation", "relu", _is("gelu"), "gelu"),
    _Setting("transformer_lm.past_context", None, _is(None), "null"),
    _Setting("codebooks_pattern.modeling", None, _is("parallel"), "parallel"),
    _Setting("codebooks_pattern.parallel.empty_initial", 0,
             lambda v: isinstance(v, int) and not isinstance(v, bool) and v <= 0, "0 or -1"),
    _Setting("interleave_stereo_codebooks.use", False, _is(False), "false"),
    _Setting("fuser.cross", [], lambda v: v == ["description"], "[description]"),
    _Setting("fuser.sum", [], lambda v: v == [], "[]"),
    _Setting("fuser.prepend", [], lambda v: v == [], "[]"),
    _Setting("fuser.input_interpolate", [], lambda v: v == [], "[]"),
    _Setting("fuser.cross_attention_pos_emb", False, _is(False), "false"),
    _Setting("conditioners.description.model", None, _is("t5"), "t5"),
    _Setting("conditioners.description.t5.finetune", False, _is(False), "false (frozen T5)"),
    _Setting("conditioners.description.t5.normalize_text", False, _is(False), "false"),
)


def check_supported(cfg: Mapping[str, Any]) -> None:
    """Raise one ``CheckpointError`` line naming the first setting magnetkit does not implement."""
    for setting in SUPPORTED_SETTINGS:
        value = cfg_value(cfg, setting.option, setting.default)
        if not setting.accepts(value):
            raise CheckpointError(
                f"unsupported audiocraft option {setting.option}: {value!r} (magnetkit supports {setting.expected})"
            )
    conditioners = cfg_value(cfg, "conditioners", {}) or {}
    if set(conditioners) - {"description", "args"}:
        extra = ", ".join(sorted(set(conditioners) - {"description", "args"}))
        raise CheckpointError(f"unsupported audiocraft option conditioners: {extra} (magnetkit supports description only)")
    dropout = cfg_value(cfg, "transformer_lm.dropout", 0.1)
    attention_dropout = cfg_value(cfg, "transformer_lm.attention_dropout", None)
    if attention_dropout is not None and attention_dropout != dropout:
        raise CheckpointError(
            f"unsupported audiocraft option transformer_lm.attention_dropout: {attention_dropout!r} "
            f"(magnetkit uses transformer_lm.dropout = {dropout!r} for attention too)"
        )
    n_q = cfg_value(cfg, "compression_model_n_q", None)
    if n_q is not None and n_q != cfg_value(cfg, "transformer_lm.n_q", 8):
        raise CheckpointError(f"unsupported audiocraft option compression_model_n_q: {n_q!r} (must equal transformer_lm.n_q)")


# ------------------------------------------------------------------------ config and recipe
def model_config_from_xp_cfg(cfg: Mapping[str, Any]) -> ModelConfig:
    """``ModelConfig`` from ``transformer_lm.*`` (absent keys take audiocraft's constructor defaults)."""
    lm = "transformer_lm."
    values = {
        "dim": cfg_value(cfg, lm + "dim", 128),
        "num_heads": cfg_value(cfg, lm + "num_heads", 8),
        "num_layers": cfg_value(cfg, lm + "num_layers"),
        "hidden_scale": cfg_value(cfg, lm + "hidden_scale", 4),
        "num_codebooks": cfg_value(cfg, lm + "n_q", 8),
        "cardinality": cfg_value(cfg, lm + "card", 1024),
        "subcodes_context": cfg_value(cfg, lm + "subcodes_context", 5),
        "activation": cfg_value(cfg, lm + "activation", "relu"),
        "norm_eps": AUDIOCRAFT_NORM_EPS,
        "bias_ff": cfg_value(cfg, lm + "bias_ff", True),
        "bias_attn": cfg_value(cfg, lm + "bias_attn", True),
        "bias_proj": cfg_value(cfg, lm + "bias_proj", True),
        "max_period": cfg_value(cfg, lm + "max_period", 10_000),
        "positional_scale": cfg_value(cfg, lm + "positional_scale", 1.0),
        "dropout": cfg_value(cfg, lm + "dropout", 0.1),
        "frame_rate": cfg_value(cfg, lm + "compression_model_framerate", 50),
        # audiocraft's MAGNeT loader overrides transformer_lm.segment_duration with this one.
        "segment_duration": cfg_value(cfg, "dataset.segment_duration"),
    }
    try:
        return ModelConfig(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CheckpointError(f"xp.cfg gives an invalid model setting {field}: {first['msg']}") from None


def recipe_from_xp_cfg(cfg: Mapping[str, Any], codec_source: str) -> dict[str, dict[str, Any]]:
    """Recipe sections (``model``, ``conditioner``, ``codec``, ``scheduler``) for a checkpoint's ``xp.cfg``."""
    t5 = "conditioners.description.t5."
    return {
        "model": model_config_from_xp_cfg(cfg).model_dump(),
        "conditioner": {
            "name": "t5",
            "model": cfg_value(cfg, t5 + "name"),
            "word_dropout": float(cfg_value(cfg, t5 + "word_dropout", 0.0)),
        },
        # The encodec plugin reads compression_state_dict.bin from the same folder or hub id.
        "codec": {"name": "encodec", "model": codec_source},
        # audiocraft's MAGNeT masks with the cosine schedule of the paper (§3.1, Eq. 1).
        "scheduler": {"name": "cosine", "span_len": int(cfg_value(cfg, "masking.span_len"))},
    }


# ---------------------------------------------------------------------------- tensor names
def split_audiocraft_state(best_state: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    """audiocraft's ``best_state`` -> (transformer state, conditioner state) under magnetkit's names.

    Names this does not recognise are kept, so loading reports them as unknown keys.
    """
    model_state: dict[str, torch.Tensor] = {}
    conditioner_state: dict[str, torch.Tensor] = {}
    for key, value in best_state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"best_state[{key!r}] is a {type(value).__name__}, not a tensor")
        if key.startswith(CONDITIONER_PREFIX):
            conditioner_state[key[len(CONDITIONER_PREFIX):]] = value
            continue
        if key.startswith(LAYERS_PREFIX):
            key = "layers." + key[len(LAYERS_PREFIX):]
        # Checkpoints trained with audiocraft's nn.MultiheadAttention path nest these under ``mha.``.
        key = key.replace(".self_attn.mha.", ".self_attn.").replace(".cross_attention.mha.", ".cross_attention.")
        model_state[key] = value
    return model_state, conditioner_state


def audiocraft_state(model: nn.Module, conditioner: nn.Module, dtype: torch.dtype | None = None) -> dict:
    """audiocraft's ``best_state`` (names and order) for ``model`` and ``conditioner``."""
    state = {CONDITIONER_PREFIX + key: value for key, value in module_state(conditioner, dtype).items()}
    for key, value in module_state(model, dtype).items():
        state[LAYERS_PREFIX + key[len("layers."):] if key.startswith("layers.") else key] = value
    return state


# -------------------------------------------------------------------------------- reading
def read_audiocraft_checkpoint(source: str | os.PathLike) -> AudiocraftCheckpoint:
    """Read an audiocraft MAGNeT LM checkpoint from a folder, a ``state_dict.bin`` or a hub id.

    Args:
        source: a local folder holding ``state_dict.bin``, the file itself, or a hub id
            (resolved from the local Hugging Face cache when offline).
    Returns:
        The mapped configuration, recipe sections and tensors (not yet loaded into a model).
    Raises:
        CheckpointError: an unsafe or malformed file, or a setting magnetkit does not support.
        HubUnavailableError: a hub id that is not cached while the hub cannot be reached.
    """
    path = local_path(source, LM_FILE, what="MAGNeT checkpoint")
    package = read_package(path)
    for key, kind in (("best_state", dict), ("xp.cfg", str)):
        if not isinstance(package.get(key), kind):
            raise CheckpointError(f"{str(path)!r} is not an audiocraft LM checkpoint: no {key!r} {kind.__name__}")
    cfg = parse_xp_cfg(package["xp.cfg"])
    check_supported(cfg)
    codec_source = str(source) if looks_like_hub_id(str(source)) else str(path.parent.resolve())
    model_state, conditioner_state = split_audiocraft_state(package["best_state"])
    return AudiocraftCheckpoint(
        source=str(source), path=path, model_config=model_config_from_xp_cfg(cfg),
        recipe=recipe_from_xp_cfg(cfg, codec_source), model_state=model_state,
        conditioner_state=conditioner_state, xp_cfg=cfg, version=package.get("version"),
    )


def load_audiocraft(source: str | os.PathLike, *, conditioner: nn.Module | None = None,
                    dtype: torch.dtype | None = None) -> tuple[MagnetTransformer, nn.Module, AudiocraftCheckpoint]:
    """A ready ``MagnetTransformer`` and conditioner (eval mode) from an audiocraft checkpoint.

    Args:
        source: folder, ``state_dict.bin`` or hub id (see ``read_audiocraft_checkpoint``).
        conditioner: a conditioner to load the learned weights into; by default the registry
            builds the one ``recipe['conditioner']`` names (e.g. T5 ``t5-base``).
        dtype: the model's dtype (default float32); stored fp16 or fp32 weights are cast to it.
    Returns:
        (model, conditioner, checkpoint).
    Raises:
        CheckpointError: see ``read_audiocraft_checkpoint``; also missing or unknown tensors.
    """
    checkpoint = read_audiocraft_checkpoint(source)
    model = MagnetTransformer(checkpoint.model_config).to(dtype or torch.float32)
    if conditioner is None:
        from magnetkit.registry import build

        params = dict(checkpoint.recipe["conditioner"])
        conditioner = build("conditioner", params.pop("name"), params, output_dim=checkpoint.model_config.dim)
    load_weights(model, checkpoint.model_state, what=f"transformer weights of {checkpoint.source!r}")
    load_weights(conditioner, checkpoint.conditioner_state, what=f"conditioner weights of {checkpoint.source!r}")
    return model.eval(), conditioner.eval(), checkpoint


# -------------------------------------------------------------------------------- export
def export_audiocraft(folder: str | os.PathLike, model: MagnetTransformer, conditioner: nn.Module, *,
                      text_encoder: str | None = None, span_len: int | None = None,
                      base_cfg: Mapping[str, Any] | None = None, compression: str | os.PathLike | None = None,
                      dtype: torch.dtype | None = None, version: str = AUDIOCRAFT_VERSION) -> Path:
    """Write ``state_dict.bin`` (and optionally the codec entry) that audiocraft's MAGNeT loads.

    Args:
        folder: output folder (created if missing); files are replaced atomically.
        model: the transformer to export.
        conditioner: the T5 conditioner whose ``output_proj`` goes with it.
        text_encoder: the audiocraft T5 name to record (audiocraft loads T5 only by name);
            default the conditioner's ``config.model``.
        span_len: masking span length to record; default that of ``base_cfg`` (or `SchedulerConfig`'s).
        base_cfg: a parsed ``xp.cfg`` to start from (e.g. ``AudiocraftCheckpoint.xp_cfg``) so
            every other training setting survives; default a template of the keys audiocraft reads.
        compression: a ``compression_state_dict.bin`` (or a folder holding one) to copy, or a
            pretrained codec name such as ``facebook/encodec_32khz`` to reference.
        dtype: the stored dtype (e.g. torch.float16); default the model's.
        version: the audiocraft version recorded in the file.
    Returns:
        The path of the written ``state_dict.bin``.
    Raises:
        CheckpointError: a model or conditioner audiocraft cannot represent.
    """
    cfg = xp_cfg_for(model.config, _t5_name(conditioner, text_encoder),
                     word_dropout=float(getattr(getattr(conditioner, "config", None), "word_dropout", 0.0)),
                     span_len=span_len, base_cfg=base_cfg)
    package = {
        "best_state": audiocraft_state(model, conditioner, dtype),
        "xp.cfg": yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False),
        "version": version,
        "exported": True,
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / LM_FILE
    atomic_write(target, lambda tmp: torch.save(package, tmp))
    if compression is not None:
        _write_compression(folder / CODEC_FILE, compression, version)
    return target


def xp_cfg_for(config: ModelConfig, t5_name: str, *, word_dropout: float = 0.0, span_len: int | None = None,
               base_cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``xp.cfg`` dict audiocraft needs to rebuild a model with ``config``."""
    if config.norm_eps != AUDIOCRAFT_NORM_EPS:
        raise CheckpointError(f"audiocraft fixes the LayerNorm eps at 1e-5; this model uses norm_eps={config.norm_eps}")
    if config.positional_embedding != "sin":
        # audiocraft's rope path needs xformers and carries a "fix and verify layout" note: not
        # a format magnetkit can promise the same outputs in.
        raise CheckpointError(f"audiocraft-format export supports sinusoidal positions only; this model uses "
                              f"positional_embedding={config.positional_embedding} (keep its magnetkit checkpoint)")
    cfg = copy.deepcopy(dict(base_cfg)) if base_cfg is not None else yaml.safe_load(TEMPLATE.read_text())
    lm = cfg.setdefault("transformer_lm", {})
    lm.update({
        "dim": config.dim, "num_heads": config.num_heads, "num_layers": config.num_layers,
        "hidden_scale": _number(config.hidden_scale), "n_q": config.num_codebooks, "card": config.cardinality,
        "dropout": config.dropout, "activation": config.activation, "norm_first": True,
        "bias_ff": config.bias_ff, "bias_attn": config.bias_attn, "bias_proj": config.bias_proj,
        "causal": False, "subcodes_context": config.subcodes_context,
        "compression_model_framerate": _number(config.frame_rate),
        "segment_duration": _number(config.segment_duration),
    })
    if config.max_period != 10_000 or "max_period" in lm:
        lm["max_period"] = _number(config.max_period)
    if config.positional_scale != 1 or "positional_scale" in lm:
        lm["positional_scale"] = _number(config.positional_scale)
    cfg["lm_model"] = "transformer_lm_magnet"
    cfg.setdefault("dataset", {})["segment_duration"] = _number(config.segment_duration)
    masking = cfg.setdefault("masking", {})
    if span_len is None:  # the base config's, else the one default of magnetkit's schedulers
        from magnetkit.scheduling import SchedulerConfig

        span_len = masking.get("span_len", SchedulerConfig().span_len)
    masking["span_len"] = span_len
    lm["span_len"] = masking["span_len"]
    description = cfg.setdefault("conditioners", {}).setdefault("description", {})
    description["model"] = "t5"
    t5 = description.setdefault("t5", {})
    t5.update({"name": t5_name, "finetune": False, "word_dropout": _number(word_dropout), "normalize_text": False})
    check_supported(cfg)  # an exported file must read back; catches a base_cfg with odd settings
    return cfg


def _t5_name(conditioner: nn.Module, text_encoder: str | None) -> str:
    keys = sorted(conditioner.state_dict())
    if keys != ["output_proj.bias", "output_proj.weight"]:
        raise CheckpointError(f"audiocraft's T5 conditioner holds only output_proj; this conditioner holds {keys}")
    name = text_encoder or str(getattr(getattr(conditioner, "config", None), "model", ""))
    if name not in AUDIOCRAFT_T5_NAMES:
        raise CheckpointError(
            f"audiocraft loads T5 only by name ({', '.join(AUDIOCRAFT_T5_NAMES)}); the conditioner's model is "
            f"{name!r}: pass text_encoder= the name of the T5 it holds"
        )
    return name


def _write_compression(target: Path, compression: str | os.PathLike, version: str) -> None:
    """Copy a codec checkpoint, or write audiocraft's reference to a pretrained codec."""
    source = Path(compression).expanduser()
    if source.is_dir():
        source = source / CODEC_FILE
    if source.is_file():
        read_package(source)  # never copy forward a file we would refuse to read
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
        return
    if not looks_like_hub_id(str(compression)):
        raise CheckpointError(f"compression {str(compression)!r} is neither a codec checkpoint nor a codec name")
    package = {"pretrained": str(compression), "exported": True, "version": version}
    atomic_write(target, lambda tmp: torch.save(package, tmp))



def _number(value: float) -> int | float:
    """Integral floats as ints, as audiocraft's YAML writes them (``10`` not ``10.0``)."""
    return int(value) if float(value).is_integer() else float(value)


def _unpickler_reason(exc: BaseException) -> str:
    """The informative line of torch's weights-only error (it wraps it in generic advice)."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(boilerplate)]
    return (reasons or lines or [type(exc).__name__])[0]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
