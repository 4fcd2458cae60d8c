"""`magnetkit --version`, and a reader that closes the pipe early."""

from __future__ import annotations

import subprocess
import sys

import magnetkit


def test_version_flag_prints_the_package_version():
    proc = subprocess.run([sys.executable, "-m", "magnetkit.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"magnetkit {magnetkit.__version__}"


def test_a_closed_pipe_ends_quietly():
    # Like `magnetkit recipes | head -0`: the reader closes its end before anything is written.
    proc = subprocess.Popen([sys.executable, "-m", "magnetkit.cli", "recipes"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
