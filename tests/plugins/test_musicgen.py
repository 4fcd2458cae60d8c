"""The ``musicgen`` plugin on a tiny random MusicGen: delay pattern, probabilities, prefixes, refusals."""

from types import SimpleNamespace

import pytest
import torch
from magnetkit_musicgen import MusicgenConfig, MusicgenModel, build_musicgen
from magnetkit_musicgen.testing import save_codec, tiny_musicgen

from magnetkit.errors import CheckpointError, HubUnavailableError, RecipeError
from magnetkit.hybrid import HybridConfig, decode_prefix
from magnetkit.model.config import ModelConfig
from magnetkit.recipe import load_recipe
from magnetkit.registry import get_registry
from magnetkit.testing import FakeCodec, FakeCodecConfig, check_rescorer

CARD, K = 64, 4
TEXTS = ["happy rock", "sad slow piano"]


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one torch thread


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_musicgen(tmp_path_factory.mktemp("musicgen"), cardinality=CARD)


@pytest.fixture(scope="module")
def musicgen(folder) -> MusicgenModel:
    return build_musicgen(MusicgenConfig(model=str(folder)))


def system(cardinality=CARD, codec=None):
    """What build_musicgen reads from a pipeline: device, transformer config, codec."""
    model = SimpleNamespace(config=ModelConfig(dim=32, num_heads=2, num_layers=1, cardinality=cardinality))
    return SimpleNamespace(device=torch.device("cpu"), model=model,
                           codec=codec or FakeCodec(FakeCodecConfig(cardinality=cardinality)))


def transformers_greedy(musicgen, texts, frames, scale):
    """Codes from transformers' own MusicGen.generate (greedy), caught on their way to the audio decoder."""
    model, caught = musicgen.model, {}
    decode = model.audio_encoder.decode

    def catch(codes, audio_scales=None, **kwargs):
        caught["codes"] = codes[0].clone()
        return decode(codes, audio_scales=audio_scales, **kwargs)

    model.audio_encoder.decode = catch
    try:
        inputs = musicgen.tokenizer(texts, padding=True, return_tensors="pt")
        model.generate(**inputs, do_sample=False, guidance_scale=scale, max_new_tokens=frames + K - 1)
    finally:
        model.audio_encoder.decode = decode
    return caught["codes"]


def test_registered_and_validated_in_recipe_terms(folder):
    spec = get_registry().get("rescorer", "musicgen")
    assert spec.plugin == "musicgen" and spec.config is MusicgenConfig
    base = {"codec": {"name": "encodec"}, "conditioner": {"name": "t5"}}
    recipe = load_recipe({**base, "rescorer": {"name": "musicgen", "model": str(folder), "weight": 0.5,
                                               "stages": [0]}})
    assert recipe.rescorer.config.weight == 0.5 and recipe.rescorer.config.stages == [0]
    with pytest.raises(RecipeError) as err:
        load_recipe({**base, "rescorer": {"name": "musicgen", "weight": 1.5, "temprature": 2}})
    assert "rescorer.weight: Input should be less than or equal to 1" in str(err.value)
    assert "rescorer.temprature: unknown key" in str(err.value)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_prefix_decoding_matches_transformers_generate(musicgen, scale):
    """Our KV-cached delay-pattern loop and null condition reproduce MusicGen.generate exactly (greedy)."""
    guided = scale != 1
    session = musicgen.start(TEXTS + ([None, None] if guided else []))
    ours = decode_prefix(session, 2, 12, K, CARD, HybridConfig(top_k=1, cfg_coef=scale), guided)
    assert torch.equal(ours, transformers_greedy(musicgen, TEXTS, 12, scale))


def test_token_probs_are_one_teacher_forced_pass_in_the_delay_pattern(musicgen):
    codes = torch.randint(0, CARD, (2, K, 15), generator=torch.Generator().manual_seed(0))
    probs = musicgen.token_probs(codes, TEXTS)
    assert probs.shape == codes.shape and bool(((probs > 0) & (probs < 1)).all())
    # Reference: the transformers decoder run on transformers' own delay-pattern layout.
    decoder, states = musicgen.model.decoder, musicgen._encode(TEXTS)
    start = torch.full((2, K, 1), CARD)
    _, sequence = decoder.build_delay_pattern_mask(torch.cat([start, codes], -1).reshape(2 * K, -1),
                                                   pad_token_id=CARD, max_length=15 + K)
    logits = decoder(input_ids=sequence[:, :-1], encoder_hidden_states=states[0],
                     encoder_attention_mask=states[1]).logits.reshape(2, K, 15 + K - 1, CARD)
    expected = torch.stack([torch.softmax(logits[:, k, k:k + 15], -1).gather(-1, codes[:, k, :, None])[..., 0]
                            for k in range(K)], dim=1)
    torch.testing.assert_close(probs, expected)


def test_greedy_codes_get_the_highest_probability(musicgen):
    """A greedy prefix is, position by position, the argmax of the teacher-forced distribution."""
    codes = decode_prefix(musicgen.start(TEXTS), 2, 10, K, CARD, HybridConfig(top_k=1, cfg_coef=1), False)
    probs = musicgen.token_probs(codes, TEXTS)
    other = musicgen.token_probs((codes + 1) % CARD, TEXTS)
    assert bool((probs >= other).all()) and bool((probs > other).any())


def test_guidance_null_rows_masks_and_temperature(folder, musicgen):
    codes = torch.randint(0, CARD, (2, K, 8), generator=torch.Generator().manual_seed(1))
    plain = musicgen.token_probs(codes, TEXTS)
    unconditional = musicgen.token_probs(codes, [None, "sad slow piano"])
    assert torch.allclose(unconditional[1], plain[1]) and not torch.allclose(unconditional[0], plain[0])
    guided = build_musicgen(MusicgenConfig(model=str(folder), guidance_scale=3.0)).token_probs(codes, TEXTS)
    hot = build_musicgen(MusicgenConfig(model=str(folder), temperature=4.0)).token_probs(codes, TEXTS)
    assert not torch.allclose(guided, plain) and (hot - 1 / CARD).abs().mean() < (plain - 1 / CARD).abs().mean()
    codes[:, 3] = CARD  # codebooks MAGNeT has not decoded yet (its mask token)
    masked = musicgen.token_probs(codes, TEXTS)
    assert bool((masked[:, 3] == 0).all()) and bool((masked[:, :3] > 0).all())


def test_applies_only_at_the_recipe_stages_and_steps(folder):
    every = build_musicgen(MusicgenConfig(model=str(folder)))
    some = build_musicgen(MusicgenConfig(model=str(folder), stages=[0, 2], steps=[1]))
    assert every.applies(3, 7)
    assert some.applies(0, 1) and some.applies(2, 1)
    assert not some.applies(1, 1) and not some.applies(0, 0)


def test_a_different_token_space_is_refused_with_every_mismatch(folder):
    with pytest.raises(RecipeError) as err:
        build_musicgen(MusicgenConfig(model=str(folder)), pipeline=system(cardinality=32))
    text = str(err.value)
    assert "rescorer.model" in text and "64 codes per codebook, the MAGNeT model 32" in text
    with pytest.raises(RecipeError, match=r"hybrid.autoregressive.model .* 16000 Hz"):
        build_musicgen(MusicgenConfig(model=str(folder)), role="hybrid.autoregressive",
                       pipeline=system(codec=FakeCodec(FakeCodecConfig(sample_rate=16000, hop=320, cardinality=CARD))))


def test_an_encodec_with_other_codebooks_is_refused(folder, tmp_path):
    from magnetkit_encodec import EncodecCodecConfig, factory

    same = factory(EncodecCodecConfig(model=str(save_codec(folder, tmp_path / "same"))))
    assert build_musicgen(MusicgenConfig(model=str(folder)), pipeline=system(codec=same)).cardinality == CARD
    other_folder = tiny_musicgen(tmp_path / "other", cardinality=CARD, seed=1)
    other = factory(EncodecCodecConfig(model=str(save_codec(other_folder, tmp_path / "other_codec"))))
    with pytest.raises(RecipeError, match="codebook 0 of MusicGen's EnCodec differs from the codec's"):
        build_musicgen(MusicgenConfig(model=str(folder)), pipeline=system(codec=other))


def test_unsupported_or_missing_models_are_one_line_errors(tmp_path):
    with pytest.raises(HubUnavailableError) as err:
        build_musicgen(MusicgenConfig(model="facebook/musicgen-not-cached"))
    assert "\n" not in str(err.value) and "huggingface-cli download" in str(err.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        build_musicgen(MusicgenConfig(model=str(tmp_path / "nothing-here")))
    from transformers import MusicgenForConditionalGeneration

    stereo = tiny_musicgen(tmp_path / "stereo", cardinality=CARD)
    model = MusicgenForConditionalGeneration.from_pretrained(stereo)
    model.config.decoder.audio_channels = 2
    model.save_pretrained(stereo)
    with pytest.raises(CheckpointError, match="stereo"):
        build_musicgen(MusicgenConfig(model=str(stereo)))


@pytest.mark.parametrize("params", [{}, {"guidance_scale": 3.0, "stages": [0], "steps": [0, 1], "weight": 0.3}])
def test_rescorer_contract(folder, params):
    check_rescorer(build_musicgen, MusicgenConfig(model=str(folder), **params), num_codebooks=K, cardinality=CARD,
                   pipeline=system())
