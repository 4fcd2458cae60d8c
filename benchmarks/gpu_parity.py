"""Greedy codes on a GPU against the CPU's on the public fixture (tests/fixtures/magnet_tiny).

    python -m benchmarks.gpu_parity            # one line per precision; exit 1 if float32 differs

The fixture's greedy setting (gen_a: two texts, 3 s, steps [4, 2, 2, 2], CFG 10 -> 1) is decoded
at float32 on the CPU (audiocraft's reference codes, checked by tests/test_generation_parity.py)
and at each precision on the GPU; the share of equal tokens is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "magnet_tiny"
TEXTS = ["happy rock", "sad piano"]
GREEDY = ["sampler.name=greedy", "sampler.temperature=3.0", "generation.decoding_steps=[4,2,2,2]",
          "generation.cfg_max=10", "generation.cfg_min=1", "generation.progress=false"]


def greedy_codes(device: str, precision: str = "float32") -> torch.Tensor:
    """The fixture's greedy gen_a codes [2, 4, T] decoded on ``device`` at ``precision``."""
    from magnetkit.loading import load

    overrides = [f"conditioner.model={FIXTURE}/t5_random", f"codec.model={FIXTURE}/hf_encodec_32khz_random",
                 *GREEDY, f"decode.precision={precision}"]
    pipeline = load(FIXTURE, overrides, device=device)
    return pipeline.generate(TEXTS, duration=3.0, seed=0).codes.cpu()


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """The share of equal tokens."""
    return (a == b).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    """Print GPU-vs-CPU agreement per precision; exit 1 if float32 is not identical, 3 without a GPU."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", default="float32,bfloat16,float16")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not torch.cuda.is_available():
        print("gpu_parity: no CUDA device: nothing to compare", file=sys.stderr)
        return 3
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (TF32 would round inputs to 10 bits)
    cpu = greedy_codes("cpu")
    exact = True
    for precision in args.precisions.split(","):
        share = agreement(greedy_codes("cuda", precision), cpu)
        print(f"greedy codes, GPU {precision} vs CPU float32: {100 * share:.2f}% equal")
        exact &= precision != "float32" or share == 1.0
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
