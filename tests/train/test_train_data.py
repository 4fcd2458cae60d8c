"""Training data: manifests and sidecars, the token cache (resumable, shared, skipping bad files), the row stream."""

import json

import pytest
import soundfile as sf
import torch
from train_helpers import SAMPLE_RATE, clip, write_dataset

from magnetkit.audio import read_audio
from magnetkit.errors import RecipeError, UsageError
from magnetkit.registry import build
from magnetkit.testing.fakes import FakeCodec, FakeCodecConfig
from magnetkit.train.cache import open_tokens, prepare_cache, shard_path
from magnetkit.train.data import TrainingStream, valid_batches
from magnetkit.train.manifest import read_items

CODEC = {"name": "fake", "sample_rate": 8000, "hop": 160, "num_codebooks": 4, "cardinality": 16, "channels": 1}


def fake_codec():
    return FakeCodec(FakeCodecConfig(cardinality=16))


def never():
    raise AssertionError("the codec must not be built when the cache is complete")


def cosine():
    return build("scheduler", "cosine", {"span_len": 3})


# ------------------------------------------------------------------------------ manifests
def test_manifest_paths_are_relative_to_it_and_metadata_is_kept(tmp_path):
    manifest = write_dataset(tmp_path / "data", count=2)
    items = read_items(manifest)
    assert items == read_items(tmp_path / "data")  # a folder holding manifest.jsonl means it
    assert items[0].path == str((tmp_path / "data" / "clip0.wav").resolve())
    assert items[0].caption == "low slow hum" and items[0].meta == {"index": 0}


def test_folder_with_audiocraft_sidecars(tmp_path):
    for name, sidecar in (("a", {"description": "warm pad", "genre": "ambient"}), ("b", None)):
        sf.write(tmp_path / f"{name}.wav", clip(0, 0.5), SAMPLE_RATE)
        if sidecar:
            (tmp_path / f"{name}.json").write_text(json.dumps(sidecar))
    a, b = read_items(tmp_path)
    assert (a.caption, a.meta) == ("warm pad", {"genre": "ambient"})
    assert b.caption is None  # trains the null condition


def test_bad_manifests_say_where(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav"}\n{"caption": "no path"}\n')
    with pytest.raises(UsageError, match=r"m.jsonl:2: a manifest record needs a \"path\""):
        read_items(tmp_path / "m.jsonl")
    with pytest.raises(UsageError, match="neither a manifest file nor a folder"):
        read_items(tmp_path / "missing")


# ------------------------------------------------------------------------------ the cache
def test_cache_skips_corrupt_files_and_is_reused(tmp_path):
    items = read_items(write_dataset(tmp_path / "data", count=3, corrupt=True))
    assert prepare_cache(items, tmp_path / "cache", CODEC, fake_codec, shard_size=2) == 2
    tokens = open_tokens(items, tmp_path / "cache", 2)
    assert len(tokens) == 3 and [s["path"] for s in tokens.skipped] == [items[1].path]
    assert "cannot read audio file" in tokens.skipped[0]["reason"]
    # The codes are the codec's, cropped lazily.
    expected = fake_codec().encode(read_audio(items[2].path)[0][None])[0]
    assert tokens.crop(1, 10, 20).equal(expected[:, 10:30])
    assert tokens.entries[1].caption == "high fast beeps" and tokens.info.cardinality == 16
    # A second run finds everything done and never builds the codec.
    assert prepare_cache(items, tmp_path / "cache", CODEC, never, shard_size=2) == 0


def test_interrupted_cache_resumes_and_changed_files_are_encoded_again(tmp_path):
    items = read_items(write_dataset(tmp_path / "data", count=5))
    prepare_cache(items, tmp_path / "cache", CODEC, fake_codec, shard_size=2)
    shard_path(tmp_path / "cache", 1).unlink()  # as if the run was killed before writing shard 1
    with pytest.raises(UsageError, match="incomplete or stale at shard 1"):
        open_tokens(items, tmp_path / "cache", 2)
    assert prepare_cache(items, tmp_path / "cache", CODEC, fake_codec, shard_size=2) == 1
    sf.write(tmp_path / "data" / "clip4.wav", clip(0, 0.7), SAMPLE_RATE)  # a file changes
    assert prepare_cache(items, tmp_path / "cache", CODEC, fake_codec, shard_size=2) == 1
    assert open_tokens(items, tmp_path / "cache", 2).entries[4].frames == 35


def test_processes_share_the_shards(tmp_path):
    items = read_items(write_dataset(tmp_path / "data", count=5))
    built = [prepare_cache(items, tmp_path / "cache", CODEC, fake_codec, shard_size=1, rank=r, world=2)
             for r in (0, 1)]
    assert built == [3, 2] and len(open_tokens(items, tmp_path / "cache", 1)) == 5


def test_a_cache_of_another_codec_is_refused(tmp_path):
    items = read_items(write_dataset(tmp_path / "data", count=1))
    prepare_cache(items, tmp_path / "cache", CODEC, fake_codec, shard_size=4)
    with pytest.raises(RecipeError, match="data.cache: .* holds tokens of codec"):
        prepare_cache(items, tmp_path / "cache", {**CODEC, "hop": 320}, fake_codec, shard_size=4)


# ------------------------------------------------------------------------------ the stream
@pytest.fixture
def tokens(tmp_path):
    items = read_items(write_dataset(tmp_path / "data", count=5, seconds=1.0))
    items.append(read_items(write_dataset(tmp_path / "short", count=1, seconds=0.2))[0])
    prepare_cache(items, tmp_path / "cache", CODEC, fake_codec, shard_size=4)
    return open_tokens(items, tmp_path / "cache", 4)


def test_rows_depend_only_on_their_position(tokens):
    stream = TrainingStream(tokens, frames=20, min_frames=11, scheduler=cosine(), seed=3, cfg_dropout=0.5)
    assert stream.too_short == 1  # the 0.2 s file has 10 frames
    whole = stream.rows(range(0, 8))
    halves = [stream.rows(range(0, 4)), stream.rows(range(4, 8))]
    again = TrainingStream(tokens, 20, 11, cosine(), 3, 0.5).rows(range(4, 8))
    assert whole.codes.equal(torch.cat([h.codes for h in halves])) and halves[1].codes.equal(again.codes)
    assert whole.spans.equal(torch.cat([h.spans for h in halves])) and whole.texts == halves[0].texts + halves[1].texts
    assert None in whole.texts and whole.spans.any(dim=1).all()


def test_continuation_masking_hides_whole_endings_and_leaves_the_old_stream_alone(tokens):
    plain = TrainingStream(tokens, 20, 11, cosine(), 3, 0.5).rows(range(64))
    assert TrainingStream(tokens, 20, 11, cosine(), 3, 0.5, continuation=0.0).rows(range(64)).spans.equal(plain.spans)
    every = TrainingStream(tokens, 20, 11, cosine(), 3, 0.5, continuation=1.0).rows(range(64))
    assert every.codes.equal(plain.codes) and every.texts == plain.texts  # the same crops and captions
    ends_masked = lambda spans: spans[:, -1]  # noqa: E731  (a whole ending masked includes the last frame)
    assert bool(ends_masked(every.spans).all()) and not bool(ends_masked(plain.spans).all())
    assert bool((every.spans | ~plain.spans).all())  # the span mask is kept, an ending is added
    suffix = every.spans.flip(-1).cummin(-1).values.flip(-1)  # frames from which on everything is masked
    assert bool(suffix.sum(-1).gt(suffix.sum(-1).min()).any()), "the cut must vary from row to row"
    assert every.spans[:, 0].equal(plain.spans[:, 0])  # the cut is after frame 0
    half = TrainingStream(tokens, 20, 11, cosine(), 3, 0.5, continuation=0.5).rows(range(64))
    assert 0 < int((half.spans != plain.spans).any(-1).sum()) < 64


def test_every_file_once_per_epoch(tokens):
    stream = TrainingStream(tokens, frames=20, min_frames=15, scheduler=cosine(), seed=0, cfg_dropout=0.0)
    usable = len(stream.usable)
    assert usable == 5
    assert sorted(stream.file_at(p) for p in range(usable)) == stream.usable
    assert [stream.file_at(p) for p in range(usable)] != [stream.file_at(p) for p in range(usable, 2 * usable)]


def test_short_files_are_padded_and_padding_is_not_valid(tokens):
    stream = TrainingStream(tokens, frames=20, min_frames=5, scheduler=cosine(), seed=0, cfg_dropout=0.0)
    batches = valid_batches(tokens, [5, 6, 7], count=6, frames=20, scheduler=cosine(), seed=0, stage=1,
                            batch_size=2)
    assert [len(b) for b in batches] == [2, 1]
    assert batches[0].valid[0].sum() == 10 and not batches[0].valid[1].any()  # the short file; then padding
    assert stream.too_short == 0
