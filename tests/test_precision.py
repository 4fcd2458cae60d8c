"""decode.precision: each precision generates, float32 stays exact, bf16/int8 agree with fp32, bad values fail."""

import logging

import pytest
import torch
from pydantic import ValidationError

from magnetkit import precision as precision_module
from magnetkit.cli import main
from magnetkit.decoding import DecodeOptions
from magnetkit.engine import Decoder, Guidance
from magnetkit.errors import RecipeError
from magnetkit.loading import load
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.precision import Int8Linear, prepare_model, slow_reason
from magnetkit.recipe import validate_recipe
from magnetkit.registry import build

GREEDY = ["sampler.name=greedy", "generation.decoding_steps=[4,2,2,2]", "generation.progress=false"]
# Greedy tokens equal to float32's, measured on the model below (dim 256, 4 layers, random weights,
# seeds 0-9 on 2026-12-02): bfloat16 0.915-0.968, int8 0.888-0.973 (seeds 0-1, tested: 0.96 both).
# The floor leaves room for other CPUs' rounding; a broken conversion (wrong scales, transposed
# weights) agrees on about 1/card of the tokens.
AGREEMENT_FLOOR = {"bfloat16": 0.85, "int8": 0.85}


@pytest.fixture(scope="module")
def components(tiny_dir):
    return [f"conditioner.model={tiny_dir}/t5_random", f"codec.model={tiny_dir}/hf_encodec_32khz_random"]


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_each_cpu_precision_generates_valid_audio(tiny_dir, components, one_thread, precision):
    pipeline = load(tiny_dir, components + GREEDY + [f"decode.precision={precision}"], device="cpu")
    assert pipeline.recipe.decode.precision == precision
    assert precision_module.model_precision(pipeline.model) == precision
    out = pipeline.generate(["happy rock"], duration=1.0, seed=0)
    assert out.codes.min() >= 0 and out.codes.max() < 2048
    assert torch.isfinite(out.audio).all() and out.audio.dtype == torch.float32


def test_float32_is_the_default_and_converts_nothing(tiny_dir, components):
    pipeline = load(tiny_dir, components + GREEDY, device="cpu")
    assert pipeline.recipe.decode == DecodeOptions()
    assert pipeline.model.out_norm.weight.dtype == torch.float32
    assert all(isinstance(m, torch.nn.Linear) for m in pipeline.model.linears)


def test_float16_on_a_cpu_is_one_clear_recipe_error(tiny_dir, components):
    with pytest.raises(RecipeError, match="float16 runs only on a GPU; on a CPU use bfloat16 or int8"):
        load(tiny_dir, components + ["decode.precision=float16"], device="cpu")


def test_a_bad_precision_is_one_recipe_error_naming_the_choices(tiny_dir, components):
    with pytest.raises(RecipeError) as info:
        load(tiny_dir, components + ["decode.precision=int4"], device="cpu")
    assert info.value.problems == ["decode.precision: Input should be 'float32', 'bfloat16', 'float16' or 'int8'"]


def test_the_cli_reports_a_bad_decode_value_in_one_line(capsys):
    assert main(["validate", "magnet-small-10secs", "decode.precision=int4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: decode.precision: Input should be 'float32'")
    assert main(["validate", "magnet-small-10secs", "decode.precision=bfloat16", "decode.compile=true"]) == 0


def test_decode_switches_reach_the_decoder(tiny_dir, components, monkeypatch):
    seen = []
    original = Decoder.generate

    def spy(self, *args, **kwargs):
        seen.append(self.options)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Decoder, "generate", spy)
    pipeline = load(tiny_dir, components + GREEDY + ["decode.masked_only=false", "decode.blocked_attention=false"],
                    device="cpu")
    pipeline.generate(["happy rock"], duration=1.0, seed=0)
    assert seen[0].masked_only is False and seen[0].blocked_attention is False and seen[0].cross_cache is True


def test_converting_twice_to_another_precision_is_refused():
    model = MagnetTransformer(ModelConfig(dim=32, num_heads=2, num_layers=1, cardinality=16, num_codebooks=2))
    prepare_model(model, "int8", "cpu")
    assert prepare_model(model, "int8", "cpu") is model  # idempotent
    with pytest.raises(RecipeError, match="already runs at int8"):
        prepare_model(model, "bfloat16", "cpu")


def test_int8_linear_matches_the_float_layer_to_quantisation_error():
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 512)
    quantised = Int8Linear.from_linear(linear)
    for rows in (64, 8):  # _int_mm, and the dequantised path for few rows
        x = torch.randn(3, rows, 256)
        exact, approx = linear(x), quantised(x)
        assert approx.shape == exact.shape
        assert ((approx - exact).norm() / exact.norm()).item() < 0.02
    part = quantised(torch.randn(40, 256), rows=slice(128, 384))
    assert part.shape == (40, 256)


def _agreement(precision: str, seed: int) -> float:
    config = ModelConfig(dim=256, num_heads=4, num_layers=4, cardinality=256, num_codebooks=4)
    torch.manual_seed(seed)
    model = MagnetTransformer(config).eval()
    condition = torch.randn(2, 6, 256)
    recipe = validate_recipe({"codec": {"name": "encodec"}, "conditioner": {"name": "t5"},
                              "sampler": {"name": "greedy"}})
    scheduler = build("scheduler", recipe.scheduler.name, recipe.scheduler.config)
    sampler = build("sampler", recipe.sampler.name, recipe.sampler.config)
    guidance = Guidance(condition, cfg_max=recipe.generation.cfg_max, cfg_min=recipe.generation.cfg_min)
    codes = {}
    for name in ("float32", precision):
        copy = MagnetTransformer(config).eval()
        copy.load_state_dict(model.state_dict())
        decoder = Decoder(copy, scheduler, sampler, options=DecodeOptions(precision=name))
        codes[name] = decoder.generate(1, 150, [4, 2, 2, 2], guidance, None, torch.Generator().manual_seed(0))
    return (codes["float32"] == codes[precision]).float().mean().item()


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_low_precision_greedy_tokens_mostly_agree_with_float32(one_thread, precision):
    agreement = min(_agreement(precision, seed) for seed in range(2))
    assert agreement >= AGREEMENT_FLOOR[precision]


def test_slow_precisions_are_named_from_the_cpu_flags(monkeypatch, caplog):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.setattr(precision_module, "_WARNED", set())
    assert "no bfloat16 instructions" in slow_reason("bfloat16")
    assert "no int8 dot-product instructions" in slow_reason("int8")
    assert slow_reason("float32") is None and slow_reason("bfloat16", "cuda") is None
    with caplog.at_level(logging.WARNING, logger="magnetkit.precision"):
        precision_module.warn_if_slow("bfloat16", "cpu")
        precision_module.warn_if_slow("bfloat16", "cpu")
    assert len([r for r in caplog.records if "bfloat16" in r.getMessage()]) == 1
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset({"avx512_bf16", "avx512_vnni"}))
    assert slow_reason("bfloat16") is None and slow_reason("int8") is None


def test_decode_options_built_directly_refuse_bad_values():
    with pytest.raises(ValidationError, match=r"precision\n  Input should be 'float32'"):
        DecodeOptions(precision="fp8")
    assert DecodeOptions().replace(precision="int8").precision == "int8"


def test_bfloat16_logits_stay_close_beyond_256_frames():
    """bfloat16 rounds integers above 256: positions must come from float32 or late frames drift."""
    config = ModelConfig(dim=64, num_heads=2, num_layers=1, cardinality=32, num_codebooks=1)
    torch.manual_seed(0)
    model = MagnetTransformer(config).eval()
    codes = torch.randint(0, 32, (1, 1, 500))
    condition = torch.randn(1, 4, 64)
    with torch.no_grad():
        exact = model(codes, condition, 0)[..., 300:, :]
        prepare_model(model, "bfloat16", "cpu")
        approx = model(codes, condition, 0)[..., 300:, :].float()
    assert ((approx - exact).norm() / exact.norm()).item() < 0.03


def test_generate_reads_decode_settings_as_overrides_not_texts():
    from magnetkit.commands.generate import split_args

    _, texts, overrides = split_args(["a tune", "decode.precision=int8", "decode.masked_only=false"], None)
    assert texts == ["a tune"] and overrides == ["decode.precision=int8", "decode.masked_only=false"]
