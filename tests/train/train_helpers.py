"""Shared pieces of the training tests: a tiny synthetic dataset, a tiny recipe, subprocess runs."""

import json
import os
import socket
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

LAUNCH = Path(__file__).with_name("launch.py")
SAMPLE_RATE = 8000  # the fake codec's defaults: 8 kHz, hop 160 -> 50 frames/s
CAPTIONS = ["low slow hum", "high fast beeps", "mid pulse", "rising tone", "falling noise", "soft drone"]


def clip(index: int, seconds: float) -> np.ndarray:
    """A deterministic clip whose frame means (what the fake codec encodes) vary over time."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.8 * np.sin(2 * np.pi * (1.5 + index) * t + index) * np.cos(2 * np.pi * 0.7 * (index + 1) * t)).astype(
        np.float32)


def write_dataset(folder: Path, count: int = 4, seconds: float = 1.0, corrupt: bool = False) -> Path:
    """``count`` WAV clips and a ``manifest.jsonl`` (relative paths); optionally a corrupt file too."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        sf.write(folder / f"clip{i}.wav", clip(i, seconds), SAMPLE_RATE)
        lines.append({"path": f"clip{i}.wav", "caption": CAPTIONS[i % len(CAPTIONS)], "index": i})
    if corrupt:
        (folder / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio")
        lines.insert(1, {"path": "broken.wav", "caption": "broken"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest


def tiny_recipe(out_dir: Path, train_data: Path, valid_data: Path | None = None, **train) -> dict:
    """A recipe for a 2-layer, width-32 model on the fake codec (4 codebooks of 16)."""
    return {
        "model": {"dim": 32, "num_heads": 2, "num_layers": 2, "num_codebooks": 4, "cardinality": 16,
                  "frame_rate": 50, "segment_duration": 0.5},
        "codec": {"name": "fake", "cardinality": 16, "num_codebooks": 4},
        "conditioner": {"name": "fake"},
        "scheduler": {"name": "cosine", "span_len": 3},
        "generation": {"duration": 0.5, "decoding_steps": [4, 2, 2, 2], "progress": False},
        "data": {"train": str(train_data), **({"valid": str(valid_data)} if valid_data else {})},
        "train": {"steps": 20, "batch_size": 4, "lr": 3e-3, "warmup_steps": 2, "ema_decay": None,
                  "out_dir": str(out_dir), "tensorboard": False, "progress": False, "log_every": 1,
                  "save_every": 1000, "valid_every": 1000, **train},
    }


def write_recipe(path: Path, recipe: dict) -> Path:
    """The recipe as a YAML file."""
    path.write_text(yaml.safe_dump(recipe))
    return path


def free_port() -> int:
    """A TCP port nobody listens on (for torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_command(*args: str, nproc: int = 1) -> list[str]:
    """The command running the CLI (with fakes) in ``nproc`` processes."""
    if nproc == 1:
        return [sys.executable, str(LAUNCH), *args]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
            f"--master-port={free_port()}", str(LAUNCH), *args]


def child_env() -> dict:
    """One thread per process, offline."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def run_cli(*args: str, nproc: int = 1, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI in subprocesses; fail the test with their output if they fail."""
    # Own process group: on a timeout the launcher *and* its workers are killed, never left waiting.
    process = subprocess.Popen(cli_command(*args, nproc=nproc), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=child_env(), start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"timed out after {timeout} s\n{stdout}\n{stderr}") from None
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def losses(out_dir: Path, split: str = "train") -> list[tuple[int, float]]:
    """(step, loss) of a run's metrics log."""
    from magnetkit.train.metrics import METRICS_FILE, read_log

    return [(r["step"], r["loss"]) for r in read_log(out_dir / METRICS_FILE) if r["split"] == split]
