"""Fixtures of the training tests (helpers live in train_helpers.py)."""

import pytest

from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.testing.fakes import FakePlugin


@pytest.fixture
def fakes():
    """The fake codec and conditioner, selectable by recipes as ``fake``."""
    register_plugin(FakePlugin(), "fakes")
    yield
    unregister_plugin("fakes")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
