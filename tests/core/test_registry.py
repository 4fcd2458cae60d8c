"""The plugin manager and the registry."""

import re

import pytest
from pydantic import BaseModel

from magnetkit import hookimpl
from magnetkit.errors import ComponentNotFoundError, PluginError
from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.registry import get_registry
from magnetkit.testing import FakePlugin


class _Cfg(BaseModel):
    rate: float = 0.5


class _Dup:
    @hookimpl
    def register_codecs(self, register):
        register("fake", lambda cfg: None)


class _Typo:
    @hookimpl
    def register_codec(self, register):  # misspelled: register_codecs
        register("x", lambda cfg: None)


class _Sched:
    @hookimpl
    def register_masking_schedulers(self, register):
        register("const", lambda cfg: cfg.rate, config=_Cfg, description="constant rate\nmore text")


@pytest.fixture
def fakes():
    register_plugin(FakePlugin(), "fakes")
    yield
    unregister_plugin("fakes")


def test_registered_component_is_built_with_validated_config(fakes):
    register_plugin(_Sched(), "sched")
    try:
        spec = get_registry().get("scheduler", "const")
        assert spec.plugin == "sched" and spec.description == "constant rate"
        assert spec.build({"rate": 0.25}) == 0.25
        assert spec.build() == 0.5
    finally:
        unregister_plugin("sched")


def test_duplicate_name_skips_the_later_plugin_and_names_both(fakes, caplog):
    from magnetkit.plugins import plugin_infos

    register_plugin(_Dup(), "dup")
    try:
        assert get_registry().get("codec", "fake").plugin == "fakes"  # the first one keeps the name
        assert re.search("'dup' is skipped.*'fakes'.*'dup'", caplog.text)
        broken = {i.name: i.error for i in plugin_infos() if i.error}
        assert "registered twice" in broken["dup"]
    finally:
        unregister_plugin("dup")


def test_unknown_name_lists_available(fakes):
    with pytest.raises(ComponentNotFoundError, match=r"unknown codec 'nope'; available: .*fake.*magnetkit components"):
        get_registry().get("codec", "nope")


def test_misspelled_hook_fails_loudly():
    with pytest.raises(PluginError, match="unknown hook"):
        register_plugin(_Typo(), "typo")
    unregister_plugin("typo")
