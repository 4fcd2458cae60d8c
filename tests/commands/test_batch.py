"""Batch generation (`generate --prompts`): manifest, per-clip seeds, resume, batch sizes, torchrun ranks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import magnetkit.loading
from magnetkit.batch import BatchJob, clip_seed, plan_batches, read_manifest, run_batch
from magnetkit.errors import UsageError

FAST = ["generation.duration=0.5", "generation.decoding_steps=[2,1,1,1]"]
# Prompts of different token counts (batched only with equal ones) and one repeated.
PROMPTS = ["a fast high square-wave arpeggio", "a slow low sine note", "a fast mid saw beat",
           "a slow high pluck arpeggio", "a fast low noise drums beat", "a slow low sine note"]


@pytest.fixture(scope="module")
def pipeline():
    """The embedded default model with a few decoding steps."""
    return magnetkit.loading.load(None, FAST, device="cpu")


def job(out: Path, **kwargs) -> BatchJob:
    return BatchJob(list(kwargs.pop("prompts", PROMPTS)), out, overrides=FAST, **{"seed": 7, **kwargs})


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.wav"))}


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_plan_covers_every_prompt_once_in_equal_length_batches():
    lengths = [6, 6, 9, 6, 7, 6, 9]
    shares = [plan_batches(lengths, 2, rank, 3) for rank in range(3)]
    indices = sorted(i for share in shares for batch in share for i in batch)
    assert indices == list(range(7))
    for share in shares:
        for batch in share:
            assert len(batch) <= 2 and len({lengths[i] for i in batch}) == 1


def test_manifest_lists_each_clip_with_its_seed_and_settings(tmp_path, pipeline, one_thread):
    out = tmp_path / "clips"
    result = run_batch(job(out), lambda: pipeline, log=lambda _: None)
    assert (result.generated, result.skipped, result.total) == (6, 0, 6)
    entries = manifest(out)
    assert [e["index"] for e in entries] == list(range(6))
    assert [e["text"] for e in entries] == PROMPTS
    assert [e["seed"] for e in entries] == [clip_seed(7, i) for i in range(6)] == list(range(7, 13))
    assert all((out / e["file"]).is_file() and "/" not in e["file"] for e in entries)
    first = entries[0]
    assert first["source"] == "default-model" and first["overrides"] == FAST
    assert first["settings"]["recipe"]["generation"]["decoding_steps"] == [2, 1, 1, 1]
    assert not list(out.glob("manifest.part-*")) and not list(out.glob(".*"))


def test_resume_regenerates_only_what_is_missing_byte_identical(tmp_path, pipeline, one_thread):
    out = tmp_path / "clips"
    run_batch(job(out, batch_size=2), lambda: pipeline, log=lambda _: None)
    before = files(out)
    entries = manifest(out)
    # a kill: one file gone, one manifest line gone (its file written), a torn part-file line, a temporary
    (out / entries[1]["file"]).unlink()
    (out / "manifest.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries if e["index"] != 4))
    (out / "manifest.part-0.jsonl").write_text('{"index": 5, "te')
    (out / f".{entries[2]['file']}.tmp123.wav").write_bytes(b"half")
    kept = {name: (out / name).stat().st_mtime_ns for name in before if name not in (entries[1]["file"],
                                                                                       entries[4]["file"])}
    result = run_batch(job(out, batch_size=2), lambda: pipeline, log=lambda _: None)
    assert result.generated == 2 and result.skipped == 4
    assert files(out) == before  # byte-identical
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept  # the others untouched
    assert [e["index"] for e in manifest(out)] == list(range(6))


@pytest.fixture
def row_by_row(pipeline, monkeypatch):
    """The transformer and the codec run one batch row at a time: no rounding depends on the batch.

    Batched kernels round a row differently from the same row alone: the default model's logits
    differ by ~1e-5 between batch sizes 1 and 4 on this CPU (near-greedy sampling can turn that
    into another token), and speccodec's Griffin-Lim, run on batched FFTs, grows such rounding to
    ~1e-2 on some clips. Row by row, what is left is what batching itself decides: seeds,
    grouping and order.
    """
    forward, decode = pipeline.model.forward, pipeline.codec.decode
    monkeypatch.setattr(pipeline.codec, "decode",
                        lambda codes: torch.cat([decode(codes[i:i + 1]) for i in range(codes.shape[0])]))

    def rows(codes, condition, stage, *, cross_cache=None, **kwargs):
        return torch.cat([forward(codes[i:i + 1], None if condition is None else condition[i:i + 1], stage,
                                  cross_cache=None if cross_cache is None else cache_rows(cross_cache, i, i + 1),
                                  **kwargs) for i in range(codes.shape[0])])

    monkeypatch.setattr(pipeline.model, "forward", rows)
    return pipeline


def cache_rows(cache, start, stop):
    return [(key[start:stop], value[start:stop]) for key, value in cache]


def test_batched_logits_agree_with_one_row_at_a_time_up_to_rounding(pipeline):
    condition = pipeline.conditioner([PROMPTS[i] for i in (0, 1, 3, 5)]).embeddings  # equal lengths
    codes = torch.randint(0, 512, (4, 4, 24), generator=torch.Generator().manual_seed(0))
    codes[:, 0, ::3] = pipeline.model.config.mask_id
    with torch.no_grad():
        together = pipeline.model(codes, condition, 0)
        alone = torch.cat([pipeline.model(codes[i:i + 1], condition[i:i + 1], 0) for i in range(4)])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=0)


def test_batch_sizes_1_and_4_give_identical_clips(tmp_path, row_by_row, one_thread):
    run_batch(job(tmp_path / "b1", batch_size=1), lambda: row_by_row, log=lambda _: None)
    run_batch(job(tmp_path / "b4", batch_size=4), lambda: row_by_row, log=lambda _: None)
    # per-clip seeds and equal-length batches: equal files once the kernels round alike (see magnetkit/batch.py)
    assert files(tmp_path / "b1") == files(tmp_path / "b4")
    assert len(files(tmp_path / "b1")) == 6


def test_auto_batch_size_is_measured_recorded_and_gives_the_same_clips(tmp_path, row_by_row, one_thread):
    run_batch(job(tmp_path / "b1", batch_size=1), lambda: row_by_row, log=lambda _: None)
    lines = []
    run_batch(job(tmp_path / "auto", batch_size="auto", memory_budget_gib=1.0), lambda: row_by_row, log=lines.append)
    chosen = {e["batch_size"] for e in manifest(tmp_path / "auto")}
    assert len(chosen) == 1 and isinstance(next(iter(chosen)), int) and 1 <= next(iter(chosen)) <= len(PROMPTS)
    assert any(line.startswith(f"--batch-size auto: {next(iter(chosen))} ") for line in lines)
    assert files(tmp_path / "b1") == files(tmp_path / "auto")


def test_another_run_in_the_same_folder_is_refused_unless_overwrite(tmp_path, pipeline, one_thread):
    out = tmp_path / "clips"
    run_batch(job(out, prompts=PROMPTS[:2]), lambda: pipeline, log=lambda _: None)
    with pytest.raises(UsageError, match="another seed.*--overwrite"):
        run_batch(job(out, prompts=PROMPTS[:2], seed=8), lambda: pipeline, log=lambda _: None)
    with pytest.raises(UsageError, match="another text"):
        run_batch(job(out, prompts=["a calm tune", PROMPTS[1]]), lambda: pipeline, log=lambda _: None)
    with pytest.raises(UsageError, match="beyond the 1 prompts"):
        run_batch(job(out, prompts=PROMPTS[:1]), lambda: pipeline, log=lambda _: None)
    result = run_batch(job(out, prompts=PROMPTS[:2], seed=8, overwrite=True), lambda: pipeline, log=lambda _: None)
    assert result.generated == 2 and [e["seed"] for e in manifest(out)] == [8, 9]
    run_batch(job(out, prompts=PROMPTS[2:3], overwrite=True), lambda: pipeline, log=lambda _: None)
    assert [e["text"] for e in manifest(out)] == PROMPTS[2:3]
    assert list(files(out)) == [manifest(out)[0]["file"]]  # the earlier run's clips are gone


def test_unseeded_run_records_its_seed_and_resumes_with_it(tmp_path, pipeline, one_thread):
    out = tmp_path / "clips"
    run_batch(job(out, prompts=PROMPTS[:2], seed=None), lambda: pipeline, log=lambda _: None)
    base = manifest(out)[0]["base_seed"]
    (out / manifest(out)[1]["file"]).unlink()
    result = run_batch(job(out, prompts=PROMPTS[:2], seed=None), lambda: pipeline, log=lambda _: None)
    assert result.generated == 1 and [e["seed"] for e in manifest(out)] == [base, base + 1]


@pytest.mark.slow
def test_two_torchrun_ranks_share_the_prompts_and_match_one_process(tmp_path):
    """Two CPU ranks (gloo over 127.0.0.1) write every prompt once, the same bytes as one process."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS[:4]) + "\n")
    exe = Path(sys.executable).parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": f"{exe}:{os.environ['PATH']}"}
    common = ["--prompts", str(prompts), "--seed", "3", "--threads", "1", "--device", "cpu", *FAST]
    torchrun = shutil.which("torchrun", path=str(exe)) or "torchrun"
    with socket.socket() as probe:  # a free port, so parallel runs do not collide
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    subprocess.run([torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", port,
                    "--no-python", "magnetkit", "generate", *common, "-o", str(tmp_path / "ranks")],
                   check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(["magnetkit", "generate", *common, "-o", str(tmp_path / "one")], check=True, env=env,
                   capture_output=True, timeout=600)
    entries = manifest(tmp_path / "ranks")
    assert [e["index"] for e in entries] == [0, 1, 2, 3] and [e["text"] for e in entries] == PROMPTS[:4]
    assert files(tmp_path / "ranks") == files(tmp_path / "one")
    assert read_manifest(tmp_path / "ranks").keys() == {0, 1, 2, 3}
