"""Fixtures of the training tests (helpers live in train_helpers.py)."""

import pytest
import torch

from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.testing.fakes import FakePlugin


@pytest.fixture
def fakes():
    """The fake codec and conditioner, selectable by recipes as ``fake``."""
    register_plugin(FakePlugin(), "fakes")
    yield
    unregister_plugin("fakes")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and the machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
