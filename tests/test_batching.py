"""pick_batch_size: the most clips per second within a memory budget, measured by short probes."""

from types import SimpleNamespace

import pytest
import torch

import magnetkit
from magnetkit import batching
from magnetkit.batching import BatchProbe, pick_batch_size, probe_batch_sizes
from magnetkit.errors import UsageError
from magnetkit.loading import load

GIB = 2**30
PIPELINE = SimpleNamespace(device=torch.device("cpu"))  # probes are faked: only the device is read


def fake_probes(monkeypatch, table):
    """Replace the measurement by a table batch -> (clips/s, GiB added); records the batches probed."""
    probed = []

    def probe(pipeline, batch, duration, baseline=None):
        probed.append(batch)
        speed, gib = table(batch)
        return BatchProbe(batch, speed, int(gib * GIB))

    monkeypatch.setattr(batching, "probe_batch", probe)
    return probed


def test_the_largest_batch_that_still_pays_within_the_budget(monkeypatch):
    # Speed saturates at 16 (GPU-like), memory 0.5 GiB a clip: a 5 GiB budget fits 8 (4 GiB), not 16.
    probed = fake_probes(monkeypatch, lambda b: (min(b, 16) * 10.0, 0.5 * b))
    assert pick_batch_size(PIPELINE, 10.0, 5.0) == 8
    assert probed == [1, 2, 4, 8]  # 16 was extrapolated to 8 GiB and never run


def test_a_flat_cpu_curve_keeps_the_small_batch(monkeypatch):
    probed = fake_probes(monkeypatch, lambda b: ({1: 1.0, 2: 1.02, 4: 1.03}.get(b, 1.0), 0.1 * b))
    assert pick_batch_size(PIPELINE, 10.0, 100.0) == 1
    assert probed == [1, 2]  # doubling gained under 5%: the search stops


def test_one_clip_over_budget_still_gives_one(monkeypatch):
    fake_probes(monkeypatch, lambda b: (1.0, 3.0 * b))
    assert pick_batch_size(PIPELINE, 10.0, 1.0) == 1


def test_bad_budget_and_duration_are_usage_errors():
    with pytest.raises(UsageError, match="memory budget must be > 0 GiB"):
        probe_batch_sizes(PIPELINE, 10.0, 0)
    with pytest.raises(UsageError, match="duration must be > 0 seconds"):
        probe_batch_sizes(PIPELINE, -1.0, 1.0)


def test_real_probes_on_the_tiny_model(tiny_dir, one_thread):
    components = [f"conditioner.model={tiny_dir}/t5_random", f"codec.model={tiny_dir}/hf_encodec_32khz_random",
                  "generation.progress=false"]
    pipeline = load(tiny_dir, components, device="cpu")
    probes = probe_batch_sizes(pipeline, 1.0, 4.0, max_batch=4, min_gain=-1.0)  # every size up to 4
    assert [p.batch for p in probes] == [1, 2, 4]
    assert all(p.clips_per_second > 0 and p.added_bytes >= 0 for p in probes)
    assert magnetkit.pick_batch_size is pick_batch_size
    assert pick_batch_size(pipeline, 1.0, 4.0, max_batch=4) in (1, 2, 4)
