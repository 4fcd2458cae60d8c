"""Two-model hybrid generation: a MusicGen prefix, then MAGNeT in parallel; incompatible pairs refused."""

import pytest
import torch
import yaml
from hybrid_helpers import CARD, make_pipeline, tiny_model

from magnetkit.errors import RecipeError, UsageError
from magnetkit.hybrid import HybridConfig, HybridGenerator, decode_prefix, load_hybrid

TEXTS = ["happy rock", "sad slow piano"]


def hybrid_recipe(musicgen_dir, **hybrid):
    return {"hybrid": {"prefix_seconds": 0.3, "top_k": 1,
                       "autoregressive": {"name": "musicgen", "model": str(musicgen_dir)}, **hybrid}}


def test_output_is_exactly_the_autoregressive_prefix_then_the_parallel_part(fakes, musicgen_dir):
    pipe = make_pipeline(recipe=hybrid_recipe(musicgen_dir))
    hybrid = HybridGenerator.from_pipeline(pipe)
    out = hybrid.generate(TEXTS, duration=1.0, seed=4)
    assert out.prefix_frames == 15 and out.codes.shape == (2, 4, 48)
    # The prefix is MusicGen's own greedy, guided decoding of these texts...
    musicgen = hybrid.autoregressive
    session = musicgen.start(TEXTS + [None, None])
    expected = decode_prefix(session, 2, 15, 4, CARD, HybridConfig(top_k=1, cfg_coef=3.0), guided=True)
    assert torch.equal(out.prefix, expected) and torch.equal(out.codes[..., :15], expected)
    # ...and the rest is MAGNeT continuing it, exactly as Pipeline.continue_codes does.
    rest = pipe.continue_codes(expected, TEXTS, frames=50, seed=4)
    assert torch.equal(out.codes, rest.codes) and torch.equal(out.audio, rest.audio)
    assert 0 < out.autoregressive_seconds < out.seconds


def test_sampled_prefixes_follow_the_seed_and_long_outputs_use_windows(fakes, musicgen_dir):
    pipe = make_pipeline(recipe=hybrid_recipe(musicgen_dir, top_k=20))
    hybrid = HybridGenerator.from_pipeline(pipe)
    first = hybrid.generate(TEXTS, duration=0.6, seed=1)
    assert torch.equal(hybrid.generate(TEXTS, duration=0.6, seed=1).codes, first.codes)
    assert not torch.equal(hybrid.generate(TEXTS, duration=0.6, seed=2).prefix, first.prefix)
    long = hybrid.generate(TEXTS, duration=3.0, prefix_seconds=0.2, seed=1)  # window: 2 s
    assert long.codes.shape[-1] > 100 and torch.equal(long.codes[..., :10], long.prefix)


def test_recipe_file_loads_and_generates(fakes, musicgen_dir, tmp_path):
    recipe = {"model": {"dim": 32, "num_heads": 2, "num_layers": 2, "cardinality": CARD, "segment_duration": 2.0},
              "codec": {"name": "fake", "cardinality": CARD}, "conditioner": {"name": "fake"},
              "generation": {"duration": 0.5, "decoding_steps": [2, 1, 1, 1], "progress": False},
              **hybrid_recipe(musicgen_dir)}
    path = tmp_path / "hybrid.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = load_hybrid(str(path), ["hybrid.prefix_seconds=0.1"], device="cpu").generate(["a tune"], seed=0)
    assert out.prefix_frames == 5 and torch.equal(out.codes[..., :5], out.prefix)


def test_models_with_different_token_spaces_are_refused(fakes, musicgen_dir, tmp_path):
    with pytest.raises(RecipeError) as err:
        HybridGenerator.from_pipeline(make_pipeline(recipe=hybrid_recipe(musicgen_dir),
                                                    model=tiny_model(cardinality=32)))
    assert "hybrid.autoregressive.model" in str(err.value)
    assert "64 codes per codebook, the MAGNeT model 32" in str(err.value)
    recipe = {"model": {"dim": 32, "num_heads": 2, "num_layers": 2, "cardinality": 32},
              "codec": {"name": "fake", "cardinality": 32}, "conditioner": {"name": "fake"},
              **hybrid_recipe(musicgen_dir)}
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="codes per codebook"):
        load_hybrid(str(path), device="cpu")


def test_clear_errors(fakes, musicgen_dir, prefer_low):
    hybrid = HybridGenerator.from_pipeline(make_pipeline(recipe=hybrid_recipe(musicgen_dir)))
    with pytest.raises(UsageError, match="must be shorter than the duration"):
        hybrid.generate(TEXTS, duration=0.3)
    with pytest.raises(UsageError, match="build with HybridGenerator.from_pipeline"):
        HybridGenerator(make_pipeline(recipe=hybrid_recipe(musicgen_dir)))
    with pytest.raises(UsageError, match="cannot decode a prefix"):
        HybridGenerator.from_pipeline(make_pipeline(recipe={"hybrid": {"autoregressive": {"name": "prefer_low"}}}))
    with pytest.raises(RecipeError, match="hybrid.autoregressive: unknown rescorer 'nope'"):
        make_pipeline(recipe={"hybrid": {"autoregressive": {"name": "nope"}}})
    with pytest.raises(RecipeError, match=r"hybrid.autoregressive: musicgen: weight: .*less than or equal to 1"):
        make_pipeline(recipe={"hybrid": {"autoregressive": {"name": "musicgen", "weight": 3}}})


def test_command_line_writes_files_and_reports_errors_in_one_line(fakes, musicgen_dir, tmp_path, capsys):
    from magnetkit.cli import main

    recipe = {"model": {"dim": 32, "num_heads": 2, "num_layers": 2, "cardinality": CARD, "segment_duration": 2.0},
              "codec": {"name": "fake", "cardinality": CARD}, "conditioner": {"name": "fake"},
              "generation": {"duration": 0.5, "decoding_steps": [2, 1, 1, 1], "progress": False},
              **hybrid_recipe(musicgen_dir)}
    path = tmp_path / "hybrid.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["generate", str(path), "a tune", "hybrid.prefix_seconds=0.2", "-o", str(tmp_path / "out"),
                 "--quiet", "--device", "cpu"]) == 0
    assert (tmp_path / "out" / "00_a_tune.wav").is_file() and "10 frames decoded autoregressively" in capsys.readouterr().out
    assert main(["generate", str(path), "a tune", "hybrid.prefix_seconds=5", "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "must be shorter than the duration" in err and err.count("\n") == 1
