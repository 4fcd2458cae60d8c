"""CUDA-only checks (marked `cuda`: skipped with a reason where no GPU is visible; run by benchmarks/gpu_check.sh)."""

import pytest
import torch

from benchmarks.gpu_parity import agreement, greedy_codes
from magnetkit.batching import probe_batch_sizes
from magnetkit.loading import load

pytestmark = pytest.mark.cuda


@pytest.fixture
def components(tiny_dir):
    return [f"conditioner.model={tiny_dir}/t5_random", f"codec.model={tiny_dir}/hf_encodec_32khz_random",
            "generation.progress=false"]


def test_float32_gpu_greedy_codes_equal_the_cpu_ones(reference):
    torch.backends.cuda.matmul.allow_tf32 = False
    gpu = greedy_codes("cuda")
    assert agreement(gpu, greedy_codes("cpu")) == 1.0
    assert agreement(gpu, torch.as_tensor(reference["gen_a_codes"])) == 1.0


@pytest.mark.parametrize("precision", ["bfloat16", "float16", "int8"])
def test_each_precision_generates_on_the_gpu(tiny_dir, components, precision):
    pipeline = load(tiny_dir, components + [f"decode.precision={precision}"], device="cuda")
    out = pipeline.generate(["happy rock"], duration=1.0, seed=0)
    assert out.codes.min() >= 0 and out.codes.max() < 2048 and torch.isfinite(out.audio).all()


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_low_precision_greedy_codes_mostly_agree_on_the_gpu(precision):
    # Tiny random fixture: the floor is the CPU test's (tests/test_precision.py), unmeasured on a GPU yet.
    assert agreement(greedy_codes("cuda", precision), greedy_codes("cpu")) >= 0.85


def test_masked_only_is_off_by_default_on_the_gpu_and_equal_when_on(tiny_dir, components):
    greedy = ["sampler.name=greedy", "generation.decoding_steps=[4,2,2,2]"]
    plain = load(tiny_dir, components + greedy, device="cuda").generate(["happy rock"], duration=2.0, seed=0)
    masked = load(tiny_dir, components + greedy + ["decode.masked_only=true"], device="cuda").generate(
        ["happy rock"], duration=2.0, seed=0)
    assert torch.equal(plain.codes, masked.codes)


@pytest.mark.slow
def test_compiled_transformer_decodes_the_same_greedy_codes(tiny_dir, components):
    greedy = ["sampler.name=greedy", "generation.decoding_steps=[4,2,2,2]"]
    eager = load(tiny_dir, components + greedy, device="cuda").generate(["happy rock"], duration=2.0, seed=0)
    compiled = load(tiny_dir, components + greedy + ["decode.compile=true"], device="cuda").generate(
        ["happy rock"], duration=2.0, seed=0)
    assert agreement(compiled.codes, eager.codes) >= 0.99


def test_batch_probes_measure_cuda_memory(tiny_dir, components):
    pipeline = load(tiny_dir, components, device="cuda")
    probes = probe_batch_sizes(pipeline, 1.0, 1.0, max_batch=4, min_gain=-1.0)
    assert [p.batch for p in probes] == [1, 2, 4] and probes[-1].added_bytes > probes[0].added_bytes > 0
