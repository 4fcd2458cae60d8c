"""Metrics of a run: console lines and a progress bar, ``metrics.jsonl``, and TensorBoard events.

Only the main process writes. On resume the JSONL log is cut back to the checkpoint's step (a
killed run may have logged steps past it, and a partial last line), and TensorBoard is told to
purge events after that step, so both read as one uninterrupted run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from magnetkit.checkpoint.files import atomic_write

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a metrics log; a partial (unparseable) line is dropped."""
    records = []
    path = Path(path)
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def training_seconds(out_dir: str | os.PathLike) -> float | None:
    """Seconds a run spent in training steps, as its ``metrics.jsonl`` logged them; None without a log.

    Each train record carries the mean ``sec_per_step`` since the previous one, so the sum covers
    every step of every session of a resumed run (the log is cut back on resume) and leaves out
    data preparation, validation and checkpoint writes. Unlike timing a `train_model` call, it
    stays right when a finished run is called again (which trains nothing).
    """
    records = [r for r in read_log(Path(out_dir) / METRICS_FILE)
               if r.get("split") == "train" and "sec_per_step" in r and "step" in r]
    if not records:
        return None
    total, previous = 0.0, 0
    for record in sorted(records, key=lambda r: r["step"]):
        total += (record["step"] - previous) * float(record["sec_per_step"])
        previous = record["step"]
    return total


def truncate_log(path: Path, step: int) -> None:
    """Keep only the records up to ``step``."""
    if not path.exists():
        return
    kept = [json.dumps(r) + "\n" for r in read_log(path) if r.get("step", 0) <= step]
    atomic_write(path, lambda tmp: tmp.write_text("".join(kept), encoding="utf-8"))


def format_metrics(metrics: dict[str, Any]) -> str:
    """``name value`` pairs for the console."""
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


class MetricLog:
    """Where metrics go; a no-op on every process but the main one."""

    def __init__(self, out_dir: Path, start_step: int, total_steps: int, *, enabled: bool, tensorboard: bool,
                 progress: bool):
        from tqdm import tqdm

        self.enabled = enabled
        self.file = None
        self.writer = None
        if enabled:
            out_dir.mkdir(parents=True, exist_ok=True)
            truncate_log(out_dir / METRICS_FILE, start_step)
            self.file = open(out_dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out_dir / TENSORBOARD_DIR), purge_step=start_step + 1)
        self.bar = tqdm(total=total_steps, initial=start_step, desc="training", unit="step",
                        disable=not (enabled and progress), dynamic_ncols=True)

    def write(self, split: str, step: int, metrics: dict[str, Any]) -> None:
        """Record ``metrics`` of ``split`` (train, valid) at ``step``."""
        if not self.enabled:
            return
        self.file.write(json.dumps({"step": step, "split": split, **metrics}) + "\n")
        self.file.flush()
        if self.writer is not None:
            for name, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{split}/{name}", value, step)
        self.echo(f"{split} step {step}  {format_metrics(metrics)}")

    def advance(self, steps: int, **postfix: Any) -> None:
        """``steps`` steps done; show ``postfix`` on the progress bar."""
        self.bar.update(steps)
        if postfix:
            self.bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in postfix.items()},
                                 refresh=False)

    def echo(self, text: str) -> None:
        """A console line that does not break the progress bar."""
        if self.enabled:
            self.bar.write(text)

    def close(self) -> None:
        """Flush and close everything."""
        self.bar.close()
        if self.file is not None:
            self.file.close()
        if self.writer is not None:
            self.writer.close()
