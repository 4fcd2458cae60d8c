"""Reading, refusing and exporting audiocraft MAGNeT checkpoints."""

import os
import shutil

import pytest
import torch
import yaml

from magnetkit import CheckpointError, HubUnavailableError
from magnetkit.checkpoint import export_audiocraft, load_audiocraft, read_audiocraft_checkpoint
from magnetkit.checkpoint.audiocraft import cfg_value
from magnetkit.model.transformer import MagnetTransformer
from magnetkit_t5 import T5ConditionerConfig, build_t5_conditioner


@pytest.fixture(scope="module")
def package(tiny_dir):
    return torch.load(tiny_dir / "state_dict.bin", weights_only=True)


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    """(model, conditioner, checkpoint) from the fixture, T5 taken from t5_random/."""
    config = T5ConditionerConfig(model=str(tiny_dir / "t5_random"), word_dropout=0.3)
    return load_audiocraft(tiny_dir, conditioner=build_t5_conditioner(config, output_dim=64))


def write_package(folder, package, **changes):
    """A state_dict.bin in ``folder``: ``package`` with some xp.cfg options replaced (dotted keys)."""
    cfg = yaml.safe_load(package["xp.cfg"])
    for option, value in changes.items():
        node = cfg
        *parents, last = option.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({**package, "xp.cfg": yaml.safe_dump(cfg, sort_keys=False)}, folder / "state_dict.bin")
    return folder


# ----------------------------------------------------------------------------------- reading
def test_config_and_recipe_from_xp_cfg(tiny_dir):
    checkpoint = read_audiocraft_checkpoint(tiny_dir)
    config = checkpoint.model_config
    assert (config.dim, config.num_heads, config.num_layers, config.hidden_scale) == (64, 4, 2, 4.0)
    assert (config.num_codebooks, config.cardinality, config.subcodes_context) == (4, 2048, 5)
    assert (config.bias_ff, config.bias_attn, config.bias_proj) == (False, False, False)
    assert (config.frame_rate, config.segment_duration, config.dropout) == (50.0, 10.0, 0.0)
    assert checkpoint.recipe["conditioner"] == {"name": "t5", "model": "t5-base", "word_dropout": 0.3}
    assert checkpoint.recipe["codec"] == {"name": "encodec", "model": str(tiny_dir.resolve())}
    assert checkpoint.recipe["scheduler"] == {"name": "cosine", "span_len": 3}
    assert checkpoint.recipe["model"] == config.model_dump()
    assert checkpoint.version == "1.3.0"
    assert len(checkpoint.model_state) == 34 and set(checkpoint.conditioner_state) == {"output_proj.weight",
                                                                                       "output_proj.bias"}


def test_a_state_dict_file_can_be_given_directly(tiny_dir):
    assert read_audiocraft_checkpoint(tiny_dir / "state_dict.bin").model_config.dim == 64


def test_loaded_model_reproduces_audiocraft(loaded, reference):
    model, conditioner, _ = loaded
    with torch.no_grad():
        condition = conditioner([str(t) for t in reference["texts"]])
        logits = model(torch.from_numpy(reference["logits_input_stage3"]), condition.embeddings, 3)
    assert (logits[..., :256] - torch.from_numpy(reference["logits_stage3_head"])).abs().max() < 1e-4
    assert not model.training and not conditioner.training


def test_fp16_stored_checkpoint_loads_cast_to_the_model_dtype(tiny_dir, package, tmp_path, reference):
    half = {key: value.half() for key, value in package["best_state"].items()}
    torch.save({**package, "best_state": half}, tmp_path / "state_dict.bin")
    conditioner = build_t5_conditioner(T5ConditionerConfig(model=str(tiny_dir / "t5_random")), output_dim=64)
    model, conditioner, _ = load_audiocraft(tmp_path, conditioner=conditioner)
    assert model.linears[0].weight.dtype == torch.float32
    assert torch.equal(model.linears[0].weight, half["linears.0.weight"].float())
    assert torch.equal(conditioner.output_proj.weight, half[
        "condition_provider.conditioners.description.output_proj.weight"].float())
    with torch.no_grad():  # fp16 rounding of the weights moves the logits only a little
        logits = model(torch.from_numpy(reference["logits_input_stage0"]),
                       torch.from_numpy(reference["cond_description"]), 0)
    assert (logits[..., :256] - torch.from_numpy(reference["logits_stage0_head"])).abs().max() < 0.05


def test_missing_and_unknown_tensors_are_listed(tiny_dir, package, tmp_path):
    state = dict(package["best_state"])
    del state["out_norm.bias"]
    state["transformer.layers.0.layer_scale_1.scale"] = torch.zeros(64)
    torch.save({**package, "best_state": state}, tmp_path / "state_dict.bin")
    conditioner = build_t5_conditioner(T5ConditionerConfig(model=str(tiny_dir / "t5_random")), output_dim=64)
    with pytest.raises(CheckpointError, match=r"missing keys: out_norm\.bias.*unknown keys: layers\.0\.layer_scale_1"):
        load_audiocraft(tmp_path, conditioner=conditioner)


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"best_state": {"emb.0.weight": Payload()}, "xp.cfg": ""}, tmp_path / "state_dict.bin")
    with pytest.raises(CheckpointError) as info:
        read_audiocraft_checkpoint(tmp_path)
    assert "refusing to load" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "state_dict.bin").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_audiocraft_checkpoint(tmp_path / "a")
    (tmp_path / "b").mkdir()
    torch.save({"best_state": {}}, tmp_path / "b" / "state_dict.bin")
    with pytest.raises(CheckpointError, match="no 'xp.cfg'"):
        read_audiocraft_checkpoint(tmp_path / "b")
    with pytest.raises(CheckpointError, match="has no state_dict.bin"):
        read_audiocraft_checkpoint(tmp_path)


@pytest.mark.parametrize("option, value", [
    ("transformer_lm__causal", True),
    ("transformer_lm__positional_embedding", "rope"),
    ("transformer_lm__norm", "rms_norm"),
    ("transformer_lm__layer_scale", 0.1),
    ("transformer_lm__positional_scale", -1.0),
    ("transformer_lm__positional_scale", True),
    ("transformer_lm__qk_layer_norm", True),
    ("transformer_lm__kv_repeat", 2),
    ("transformer_lm__activation", "swiglu"),
    ("codebooks_pattern__modeling", "delay"),
    ("fuser__prepend", ["description"]),
    ("interleave_stereo_codebooks__use", True),
    ("conditioners__description__t5__finetune", True),
])
def test_unsupported_options_are_refused_by_name(package, tmp_path, option, value):
    folder = write_package(tmp_path / "ckpt", {"best_state": {}, "xp.cfg": package["xp.cfg"]}, **{option: value})
    with pytest.raises(CheckpointError) as info:
        read_audiocraft_checkpoint(folder)
    assert option.replace("__", ".") in str(info.value) and "\n" not in str(info.value)


def test_positional_scale_is_read_and_written_back(package, loaded, tmp_path):
    folder = write_package(tmp_path / "half", package, transformer_lm__positional_scale=0.5)
    config = read_audiocraft_checkpoint(folder).model_config
    assert config.positional_scale == 0.5
    model, conditioner, _ = loaded
    scaled = MagnetTransformer(config)
    scaled.load_state_dict(model.state_dict())
    export_audiocraft(tmp_path / "out", scaled, conditioner, text_encoder="t5-base")
    assert read_audiocraft_checkpoint(tmp_path / "out").model_config.positional_scale == 0.5
    assert read_audiocraft_checkpoint(tmp_path / "half").model_config.model_copy(
        update={"positional_scale": 1.0}) == loaded[2].model_config  # nothing else changed


def test_needed_interpolations_are_followed_and_others_refused(package, tmp_path):
    folder = write_package(tmp_path / "ok", package, dataset__segment_duration="${transformer_lm.segment_duration}")
    assert read_audiocraft_checkpoint(folder).model_config.segment_duration == 10.0
    folder = write_package(tmp_path / "env", package, transformer_lm__dim="${oc.env:DIM}")
    with pytest.raises(CheckpointError, match="transformer_lm.dim"):
        read_audiocraft_checkpoint(folder)
    assert cfg_value({"a": "???"}, "b", 1) == 1
    with pytest.raises(CheckpointError, match=r"\?\?\?"):
        cfg_value({"a": "???"}, "a")


def test_unavailable_hub_id_is_one_line():
    with pytest.raises(HubUnavailableError) as info:
        read_audiocraft_checkpoint("magnetkit-test/no-such-magnet")
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------- export
def test_export_round_trip_is_key_for_key_and_bit_identical(loaded, package, tmp_path, tiny_dir):
    model, conditioner, checkpoint = loaded
    path = export_audiocraft(tmp_path, model, conditioner, text_encoder="t5-base", base_cfg=checkpoint.xp_cfg)
    exported = torch.load(path, weights_only=True)
    assert list(exported) == list(package) and exported["version"] == "1.3.0" and exported["exported"] is True
    original, written = package["best_state"], exported["best_state"]
    assert list(written) == list(original)
    for key in original:
        assert written[key].dtype == original[key].dtype and torch.equal(written[key], original[key]), key
    assert yaml.safe_load(exported["xp.cfg"]) == yaml.safe_load(package["xp.cfg"])
    again = read_audiocraft_checkpoint(tmp_path)
    assert again.model_config == checkpoint.model_config
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_export_from_the_template_has_audiocraft_keys_and_shapes(tiny_dir, loaded, package, tmp_path):
    model, conditioner, checkpoint = loaded
    path = export_audiocraft(tmp_path, model, conditioner, text_encoder="t5-base", dtype=torch.float16,
                             compression=tiny_dir)
    exported = torch.load(path, weights_only=True)
    shapes = {key: list(value.shape) for key, value in package["best_state"].items()}
    assert {key: list(value.shape) for key, value in exported["best_state"].items()} == shapes
    assert list(exported["best_state"]) == list(shapes)
    assert all(value.dtype == torch.float16 for value in exported["best_state"].values())
    cfg = yaml.safe_load(exported["xp.cfg"])
    for option in ("transformer_lm.dim", "transformer_lm.n_q", "transformer_lm.card", "transformer_lm.causal",
                   "transformer_lm.memory_efficient", "dataset.segment_duration", "masking.span_len",
                   "conditioners.description.t5.name", "fuser.cross", "codebooks_pattern.modeling", "lm_model",
                   "classifier_free_guidance.training_dropout", "attribute_dropout"):
        assert cfg_value(cfg, option) == cfg_value(checkpoint.xp_cfg, option), option
    assert (tmp_path / "compression_state_dict.bin").read_bytes() == (tiny_dir / "compression_state_dict.bin").read_bytes()
    reread = read_audiocraft_checkpoint(tmp_path)
    assert reread.model_config == checkpoint.model_config and reread.recipe["scheduler"]["span_len"] == 3
    fresh = MagnetTransformer(reread.model_config)
    fresh.load_state_dict({k: v.float() for k, v in reread.model_state.items()})
    assert torch.equal(fresh.emb[1].weight, model.emb[1].weight.half().float())


def test_export_names_a_pretrained_codec(loaded, tmp_path):
    model, conditioner, _ = loaded
    export_audiocraft(tmp_path, model, conditioner, text_encoder="t5-base", compression="facebook/encodec_32khz")
    stub = torch.load(tmp_path / "compression_state_dict.bin", weights_only=True)
    assert stub == {"pretrained": "facebook/encodec_32khz", "exported": True, "version": "1.3.0"}


def test_export_refuses_what_audiocraft_cannot_load(loaded, tmp_path):
    model, conditioner, _ = loaded
    with pytest.raises(CheckpointError, match="audiocraft loads T5 only by name"):
        export_audiocraft(tmp_path, model, conditioner)  # the conditioner's model is a local folder
    eps_model = MagnetTransformer(model.config.model_copy(update={"norm_eps": 1e-6}))
    with pytest.raises(CheckpointError, match="eps"):
        export_audiocraft(tmp_path, eps_model, conditioner, text_encoder="t5-base")
    rope_model = MagnetTransformer(model.config.model_copy(update={"positional_embedding": "rope"}))
    with pytest.raises(CheckpointError, match="sinusoidal positions only"):
        export_audiocraft(tmp_path, rope_model, conditioner, text_encoder="t5-base")
    assert not (tmp_path / "state_dict.bin").exists()


def test_copying_a_codec_checkpoint_checks_it_is_safe(loaded, tmp_path, tiny_dir):
    model, conditioner, _ = loaded
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "compression_state_dict.bin").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        export_audiocraft(tmp_path / "out", model, conditioner, text_encoder="t5-base", compression=bad)
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
