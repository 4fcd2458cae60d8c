"""The t5 conditioner plugin against audiocraft's T5 conditioner outputs on the tiny fixture."""

import shutil

import pytest
import torch
from pydantic import ValidationError

from magnetkit import CheckpointError, HubUnavailableError, get_registry
from magnetkit.checkpoint import read_audiocraft_checkpoint
from magnetkit.interfaces import Condition, Conditioner
from magnetkit.testing import check_conditioner
from magnetkit_t5 import T5Conditioner, T5ConditionerConfig, build_t5_conditioner

TOL = 1e-5


@pytest.fixture(scope="module")
def conditioner(tiny_dir):
    conditioner = build_t5_conditioner(T5ConditionerConfig(model=str(tiny_dir / "t5_random")), output_dim=64)
    conditioner.load_state_dict(read_audiocraft_checkpoint(tiny_dir).conditioner_state)
    return conditioner.eval()


def texts_of(reference, key):
    return [str(t) for t in reference[key]]


@pytest.mark.parametrize("texts_key, extra, expected", [
    ("texts", [], "cond_description"),
    ("texts", [None, None], "cfg_cond_description"),  # the guidance batch: texts then 2 nulls
    ("texts", ["", ""], "cfg_cond_description"),  # "" is the null condition too
    ("pad_texts", [], "pad_cond_description"),
])
def test_condition_matches_audiocraft(conditioner, reference, texts_key, extra, expected):
    with torch.no_grad():
        condition = conditioner(texts_of(reference, texts_key) + extra)
    target = torch.from_numpy(reference[expected])
    assert isinstance(condition, Condition)
    assert condition.embeddings.shape == target.shape
    assert (condition.embeddings - target).abs().max().item() < TOL
    mask_key = {"cond_description": "cond_description_mask", "cfg_cond_description": "cfg_cond_description_mask"}
    if expected in mask_key:
        assert torch.equal(condition.mask, torch.from_numpy(reference[mask_key[expected]]))


def test_tokens_and_null_masks_match_audiocraft(conditioner, reference):
    tokens = conditioner.tokenize(texts_of(reference, "texts") + ["", ""])
    assert torch.equal(tokens["input_ids"], torch.from_numpy(reference["cfg_t5_input_ids"]))
    assert torch.equal(tokens["attention_mask"], torch.from_numpy(reference["cfg_t5_attention_mask"]))
    padded = conditioner.tokenize(texts_of(reference, "pad_texts"))
    assert torch.equal(padded["input_ids"], torch.from_numpy(reference["pad_t5_input_ids"]))


def test_null_and_padded_rows_are_exactly_zero(conditioner, reference):
    with torch.no_grad():
        condition = conditioner(texts_of(reference, "pad_texts") + [None])
    assert torch.all(condition.embeddings[2] == 0)
    assert torch.all(condition.embeddings[0, 3:] == 0)
    assert condition.mask[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]


def test_conditioner_contract(conditioner):
    assert isinstance(conditioner, Conditioner)
    check_conditioner(conditioner)


def test_only_the_projection_is_state_and_trainable(conditioner):
    assert list(conditioner.state_dict()) == ["output_proj.weight", "output_proj.bias"]
    assert [name for name, _ in conditioner.named_parameters()] == ["output_proj.weight", "output_proj.bias"]
    conditioner.train()
    try:
        assert not conditioner.encoder.training, "T5 stays in eval mode (no dropout) while training"
        conditioner(["happy rock"]).embeddings.sum().backward()
        assert conditioner.output_proj.weight.grad is not None
        assert all(p.grad is None for p in conditioner.encoder.parameters())
    finally:
        conditioner.zero_grad(set_to_none=True)
        conditioner.eval()


def test_word_dropout_in_training_only(tiny_dir):
    config = T5ConditionerConfig(model=str(tiny_dir / "t5_random"), word_dropout=0.5)
    conditioner = build_t5_conditioner(config, output_dim=8)
    text = "one two three four five six seven eight nine ten eleven twelve"
    assert conditioner._drop_words(text, torch.Generator().manual_seed(0)) == \
        conditioner._drop_words(text, torch.Generator().manual_seed(0))
    dropped = conditioner._drop_words(text, torch.Generator().manual_seed(0))
    assert 0 < len(dropped.split()) < 12 and set(dropped.split()) <= set(text.split())
    conditioner.eval()
    with torch.no_grad():
        a, b = conditioner([text]), conditioner([text])
    assert torch.equal(a.embeddings, b.embeddings)
    conditioner.train()
    with torch.no_grad():
        trained = conditioner([text], generator=torch.Generator().manual_seed(0))
    assert trained.embeddings.shape[1] < a.embeddings.shape[1]


def test_registered_as_t5(tiny_dir):
    spec = get_registry().get("conditioner", "t5")
    assert spec.config is T5ConditionerConfig
    built = spec.build({"model": str(tiny_dir / "t5_random")}, output_dim=16)
    assert isinstance(built, T5Conditioner) and built.output_dim == 16


def test_text_normalisation_is_refused():
    with pytest.raises(ValidationError, match="normalisation"):
        T5ConditionerConfig(normalize_text=True)
    with pytest.raises(ValidationError):
        T5ConditionerConfig(modle="t5-base")  # typos are errors, not silently ignored


def test_tokenizer_without_vocabulary_is_refused(tiny_dir, tmp_path):
    for name in ("config.json", "model.safetensors"):  # the encoder, but no tokenizer files
        shutil.copy(tiny_dir / "t5_random" / name, tmp_path / name)
    with pytest.raises(CheckpointError, match="vocabulary files"):
        build_t5_conditioner(T5ConditionerConfig(model=str(tmp_path)), output_dim=8)


def test_unavailable_hub_id_is_one_line():
    with pytest.raises(HubUnavailableError) as info:
        build_t5_conditioner(T5ConditionerConfig(model="magnetkit-test/no-such-t5"), output_dim=8)
    assert "\n" not in str(info.value) and "no-such-t5" in str(info.value)
