"""Tiny random MAGNeT and MusicGen systems sharing the fake codec's token space (8 kHz, 50 Hz, 4 x 64)."""

from __future__ import annotations

import pytest
import torch
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


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run single-threaded: on the shared 2 cores, two spinning threads make them ~100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prefer_low(fakes):
    register_plugin(PreferLowPlugin(), "prefer-low")
    yield
    unregister_plugin("prefer-low")
