"""benchmarks/gpu_check.sh rehearsed on a CPU: it says there is no GPU and still runs every step it can."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cpu_dry_run_detects_no_gpu_and_prints_the_table():
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", str(SCRIPT), "--cpu-dry-run"], capture_output=True, text=True, env=env,
                          timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "no CUDA GPU visible" in out
    assert "needs a CUDA GPU (none visible)" in out  # the CUDA tests ran and skipped, saying why
    assert "## Precision (tiny" in out
    for row in ("| float32 x1 |", "| bfloat16 x2 |", "| int8 x2 |"):
        assert row in out
    assert "gpu_check: no CUDA GPU on this machine" in out


def test_unknown_arguments_are_refused_in_one_line():
    done = subprocess.run(["bash", str(SCRIPT), "--gpu-please"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown argument --gpu-please (see --help)"
