"""Tiny random MAGNeT and MusicGen systems sharing the fake codec's token space (8 kHz, 50 Hz, 4 x 64)."""

from __future__ import annotations

import pytest
from hybrid_helpers import CARD, PreferLowPlugin

from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.testing import FakePlugin


@pytest.fixture(scope="module")
def fakes():
    """The fake codec and conditioner, selectable by recipes."""
    register_plugin(FakePlugin(), "fakes")
    yield
    unregister_plugin("fakes")


@pytest.fixture(scope="session")
def musicgen_dir(tmp_path_factory):
    """A tiny random MusicGen folder over the fake codec's token space."""
    from magnetkit_musicgen.testing import tiny_musicgen

    return tiny_musicgen(tmp_path_factory.mktemp("musicgen"), cardinality=CARD)


@pytest.fixture(scope="module")
def prefer_low(fakes):
    register_plugin(PreferLowPlugin(), "prefer-low")
    yield
    unregister_plugin("prefer-low")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
