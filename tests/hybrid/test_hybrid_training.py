"""The training loop with a ``hybrid`` section: prefix draws, normalisation, a tiny run that generates."""

import json
import math

import numpy as np
import soundfile as sf
import torch
import yaml

from magnetkit.hybrid import HybridConfig, load_hybrid
from magnetkit.hybrid.objective import draw_prefix_frames, scored_tokens
from magnetkit.train.loop import train

CARD = 16


def dataset(folder, count=4, seconds=1.0, rate=8000):
    """WAV clips whose frame means (what the fake codec encodes) vary, and a manifest."""
    folder.mkdir(parents=True)
    t = np.arange(int(seconds * rate)) / rate
    lines = []
    for i in range(count):
        sf.write(folder / f"clip{i}.wav", (0.8 * np.sin(2 * np.pi * (1.5 + i) * t + i)).astype(np.float32), rate)
        lines.append(json.dumps({"path": f"clip{i}.wav", "caption": ["hum", "beeps", "pulse", "tone"][i]}) + "\n")
    (folder / "manifest.jsonl").write_text("".join(lines))
    return folder / "manifest.jsonl"


def test_prefix_draws_are_per_step_and_plain_batches_count_as_before():
    config = HybridConfig(prefix_prob=0.5, max_prefix_seconds=0.4)
    draws = [draw_prefix_frames(config, 0, step, 50, 50.0, 3) for step in range(200)]
    assert draws == [draw_prefix_frames(config, 0, step, 50, 50.0, 3) for step in range(200)]
    assert draws != [draw_prefix_frames(config, 1, step, 50, 50.0, 3) for step in range(200)]
    assert 60 < draws.count(0) < 140 and max(draws) == 20
    assert draw_prefix_frames(None, 0, 3, 50, 50.0, 3) == 0
    spans, valid = torch.rand(2, 50) < 0.5, torch.ones(2, 50, dtype=torch.bool)
    valid[1, 40:] = False
    assert torch.equal(scored_tokens(spans, valid, 0, 4, config), (spans & valid).sum().float())
    expected = (spans[:, 10:] & valid[:, 10:]).sum() + config.ar_loss_weight * 4 * 20
    assert float(scored_tokens(spans, valid, 10, 4, config)) == float(expected)


def test_a_tiny_hybrid_trains_in_the_loop_and_its_folder_generates(tmp_path, fakes):
    manifest = dataset(tmp_path / "data")
    recipe = {
        "model": {"dim": 32, "num_heads": 2, "num_layers": 2, "num_codebooks": 4, "cardinality": CARD,
                  "frame_rate": 50, "segment_duration": 1.0},
        "codec": {"name": "fake", "cardinality": CARD}, "conditioner": {"name": "fake"},
        "generation": {"duration": 1.0, "decoding_steps": [4, 2, 2, 2], "progress": False},
        "hybrid": {"prefix_seconds": 0.2, "max_prefix_seconds": 0.4, "prefix_prob": 0.75, "top_k": 1},
        "data": {"train": str(manifest)},
        "train": {"steps": 150, "batch_size": 4, "lr": 1e-2, "warmup_steps": 5, "ema_decay": None, "device": "cpu",
                  "out_dir": str(tmp_path / "run"), "tensorboard": False, "progress": False, "log_every": 10,
                  "save_every": 1000, "valid_every": 1000, "cfg_dropout": 0.0},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    final = train(path)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for v in losses) and sum(losses[-3:]) < 0.7 * sum(losses[:3])

    hybrid = load_hybrid(str(final), device="cpu")  # the trained folder keeps its hybrid section
    assert hybrid.autoregressive is None and hybrid.config.prefix_seconds == 0.2
    out = hybrid.generate(["hum", "tone"], seed=0)
    assert out.prefix_frames == 10 and torch.equal(out.codes[..., :10], out.prefix)
    assert out.codes.shape == (2, 4, 49) and out.codes.max() < CARD
