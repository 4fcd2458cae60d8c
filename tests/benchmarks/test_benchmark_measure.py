"""The benchmark's instruments: FLOP counts against torch's counter, the band, memory, the CLI."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/ lives beside tests/

from benchmarks.measure import (
    Clock,
    ForwardShape,
    PeakMemory,
    attended_keys,
    attention_flops,
    forward_flops,
    matmul_flops,
)
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer, restricted_context_mask

CONFIG = ModelConfig(dim=64, num_heads=4, num_layers=2, cardinality=128)


@pytest.mark.parametrize("stage_only", [True, False])
def test_matmul_flops_match_torchs_flop_counter(stage_only):
    model = MagnetTransformer(CONFIG).eval()
    codes = torch.randint(0, 129, (3, 4, 100))
    cache = model.cross_attention_cache(torch.randn(3, 7, 64))
    # Stage 0 runs the fused CPU attention kernel, which the counter does not see: only matmuls count.
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(codes, None, 0, stage_only=stage_only, cross_cache=cache)
    shape = ForwardShape(rows=3, frames=100, stage=0, heads=1 if stage_only else 4)
    assert counter.get_total_flops() == matmul_flops(CONFIG, shape)


def test_attention_counts_only_the_band_for_restricted_stages():
    frames, context = 50, 5
    band = restricted_context_mask(frames, context).sum().item() / frames
    assert attended_keys(frames, 1, context) == pytest.approx(band)
    assert attended_keys(frames, 0, context) == frames
    full = attention_flops(CONFIG, ForwardShape(2, frames, 0, 1), 7)
    restricted = attention_flops(CONFIG, ForwardShape(2, frames, 1, 1), 7)
    assert full == 2 * 4 * 2 * frames * (frames + 7) * 64 and restricted < full
    assert forward_flops(CONFIG, ForwardShape(2, frames, 1, 1), 7) == (
        matmul_flops(CONFIG, ForwardShape(2, frames, 1, 1)) + restricted)


def test_clock_and_peak_memory_see_the_work():
    clock = Clock()
    with PeakMemory(torch.device("cpu")) as memory, clock.running(torch.device("cpu")):
        block = torch.ones(64, 2**20)  # 256 MiB, touched
        del block
    assert clock.wall > 0 and clock.cpu > 0
    assert memory.added >= 200 * 2**20


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end(capsys):
    from benchmarks.generation import main

    # Every row but keep_freed_memory(), which would change this test process's malloc for good.
    rows = ("default (all on),cross_cache off,stage_only off,blocked_attention off,check_every_step on,"
            "masked_only off,cpu_kernels off,all off,cfg 1")
    code = main(["--sizes", "tiny", "--batches", "1", "--steps", "1,1,1,1", "--duration", "1",
                 "--compare-size", "tiny", "--compare-steps", "1,1,1,1", "--matmul-repeats", "1", "--variants", rows,
                 "--no-precision"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| tiny x1 | 1,1,1,1 |" in out and "| all off |" in out and "cfg 1, skip_unit_guidance on" in out
    # Every option variant (8 on CPU, and the CFG-1 pair) decodes the same greedy codes as its reference.
    assert out.count("| yes |") == 10 and "| no |" not in out
    # The sampling table: audiocraft's draw, then the sorting and the loop draws with the CPU switches.
    assert "## Sampling (tiny, batch 1, steps 1,1,1,1)" in out
    assert "| sorting draw, masked_only off |" in out and "| loop draw, masked_only + cpu_kernels (default) |" in out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_sets_glibcs_malloc_options():
    # In a child process: the setting is process-wide and lasting.
    code = "from magnetkit.engine import keep_freed_memory; print(keep_freed_memory())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
