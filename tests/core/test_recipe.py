"""Recipe loading, overrides and two-stage validation."""

import pytest
from pydantic import BaseModel, ConfigDict, Field

from magnetkit import hookimpl
from magnetkit.errors import RecipeError
from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.recipe import apply_overrides, load_recipe, parse_override
from magnetkit.testing import FakePlugin


class _TopP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(3.0, gt=0)
    top_p: float = Field(0.9, gt=0, le=1)


class _Greedy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(3.0, gt=0)


class _Sched(BaseModel):
    model_config = ConfigDict(extra="forbid")
    span_len: int = Field(3, ge=1)


class _Components:
    """Stand-ins for scheduler and sampler plugins so these tests only exercise the recipe code."""

    @hookimpl
    def register_masking_schedulers(self, register):
        register("t_cosine", lambda c: c, config=_Sched)

    @hookimpl
    def register_samplers(self, register):
        register("t_top_p", lambda c: c, config=_TopP)
        register("t_greedy", lambda c: c, config=_Greedy)


BASE = {
    "codec": {"name": "fake"},
    "conditioner": {"name": "fake", "width": 8},
    "scheduler": {"name": "t_cosine", "span_len": 3},
    "sampler": {"name": "t_top_p", "top_p": 0.9},
}


@pytest.fixture(autouse=True)
def plugins():
    register_plugin(FakePlugin(), "fakes")
    register_plugin(_Components(), "t_components")
    yield
    unregister_plugin("fakes")
    unregister_plugin("t_components")


def test_valid_recipe_resolves_component_configs():
    recipe = load_recipe(BASE, ["generation.decoding_steps=[4,2,2,2]", "sampler.top_p=0.8"])
    assert recipe.generation.decoding_steps == [4, 2, 2, 2]
    assert recipe.sampler.config.top_p == 0.8 and recipe.sampler.config.temperature == 3.0
    assert recipe.to_dict()["sampler"] == {"name": "t_top_p", "temperature": 3.0, "top_p": 0.8}


def test_every_error_reported_at_once_in_recipe_terms():
    with pytest.raises(RecipeError) as info:
        load_recipe(BASE, ["scheduler.name=no_such_scheduler", "sampler.top_p=1.5", "generation.duration=-1",
                           "bogus=1"])
    problems = "\n".join(info.value.problems)
    assert "scheduler.name: unknown scheduler 'no_such_scheduler'; available:" in problems
    assert "sampler.top_p: Input should be less than or equal to 1" in problems
    assert "generation.duration: Input should be greater than 0" in problems
    assert "unknown section 'bogus'" in problems
    assert len(info.value.problems) == 4


def test_unknown_component_parameter_is_an_error():
    with pytest.raises(RecipeError, match=r"sampler.top_q: unknown key"):
        load_recipe(BASE, ["sampler.top_q=0.5"])


def test_renaming_a_component_drops_file_params_the_new_one_does_not_accept():
    recipe = load_recipe(BASE, ["sampler.name=t_greedy", "sampler.temperature=2.0"])
    assert recipe.sampler.name == "t_greedy" and recipe.sampler.config.temperature == 2.0
    with pytest.raises(RecipeError, match="sampler.top_p: unknown key"):
        load_recipe(BASE, ["sampler.name=t_greedy", "sampler.top_p=0.5"])  # given explicitly: kept, refused


def test_a_dotted_path_is_never_imported():
    with pytest.raises(RecipeError, match="codec.name: unknown codec 'os.system'"):
        load_recipe(BASE, ["codec.name=os.system"])


def test_override_parsing():
    assert parse_override("a.b=[4,2,2,2]") == (["a", "b"], [4, 2, 2, 2])
    assert parse_override("x=../some/path") == (["x"], "../some/path")
    assert parse_override("x=null") == (["x"], None)
    with pytest.raises(RecipeError, match="key=value"):
        parse_override("novalue")
    with pytest.raises(RecipeError, match="is not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("codec: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML.*bad.yaml"):
        load_recipe(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(listy)


def test_parameters_without_a_name_configure_the_default_sampler_and_scheduler():
    recipe = load_recipe({"codec": {"name": "encodec"}, "conditioner": {"name": "t5"}},
                         ["sampler.temperature=2", "scheduler.span_len=2"])
    assert recipe.sampler.name == "top_p" and recipe.sampler.config.temperature == 2
    assert recipe.scheduler.name == "cosine" and recipe.scheduler.config.span_len == 2
