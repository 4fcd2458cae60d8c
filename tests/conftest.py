"""Shared test setup: offline hub, few threads, the parity fixture."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

FIXTURE = Path(__file__).parent / "fixtures" / "magnet_tiny"


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """The audiocraft-format tiny MAGNeT folder (see fixtures/magnet_tiny/README.md)."""
    return FIXTURE


@pytest.fixture(scope="session")
def reference() -> dict:
    """audiocraft's outputs on the tiny checkpoint (compact form)."""
    with np.load(FIXTURE / "reference_compact.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture
def one_thread():
    """One torch thread for a test of small models: on the shared 2 cores a second intra-op thread
    only waits for the core another job holds (tiny models ran up to ~100x slower with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` skip, saying why, on a machine without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible); benchmarks/gpu_check.sh runs these on one")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
