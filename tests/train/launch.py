"""Run the magnetkit CLI with the test fakes registered, one torch thread (for subprocess tests).

    python tests/train/launch.py train recipe.yaml ...
    torchrun --nproc-per-node 2 tests/train/launch.py train recipe.yaml ...
"""

import sys

import torch

torch.set_num_threads(1)

from magnetkit.cli import main  # noqa: E402
from magnetkit.plugins import register_plugin  # noqa: E402
from magnetkit.testing.fakes import FakePlugin  # noqa: E402

if __name__ == "__main__":
    register_plugin(FakePlugin(), "fakes")
    sys.exit(main(sys.argv[1:]))
