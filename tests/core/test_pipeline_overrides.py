"""`Pipeline.with_overrides`: other decoding settings on the same loaded weights."""

import pytest

from magnetkit import RecipeError, load

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pipeline():
    """The embedded default model."""
    return load(None)


def test_with_overrides_shares_the_weights_and_leaves_the_original_unchanged(pipeline):
    other = pipeline.with_overrides(["sampler.name=top_k", "sampler.top_k=20", "generation.cfg_max=5",
                                     "scheduler.span_len=2"])
    assert other.model is pipeline.model and other.codec is pipeline.codec and other.conditioner is pipeline.conditioner
    assert other.recipe.sampler.name == "top_k" and other.sampler.config.top_k == 20
    assert other.recipe.generation.cfg_max == 5 and other.scheduler.config.span_len == 2
    assert other.sampler.stage_temperatures == pipeline.sampler.stage_temperatures  # kept: top_k accepts it
    assert pipeline.recipe.sampler.name == "top_p" and pipeline.recipe.generation.cfg_max == 3
    assert pipeline.scheduler.config.span_len == 3
    generation = other.generate("a slow low sine note", duration=0.6, seed=0)
    assert generation.codes.shape == (1, 4, 30)


def test_with_overrides_refuses_weights_sections_and_invalid_values(pipeline):
    with pytest.raises(RecipeError, match="codec.name: cannot change on a loaded model"):
        pipeline.with_overrides(["codec.name=encodec"])
    with pytest.raises(RecipeError, match="sampler.temperature: Input should be greater than 0"):
        pipeline.with_overrides(["sampler.temperature=0"])
    with pytest.raises(RecipeError, match="decoding_steps: 2 entries"):
        pipeline.with_overrides(["generation.decoding_steps=[4,2]"])
