"""The procedural dataset: determinism, the held-out split, captions, files; the judge on clean clips and look-alikes."""

import json
import re
from dataclasses import asdict

import numpy as np
import pytest
import soundfile as sf

from magnetkit.errors import UsageError

from magnetkit_synth import analysis
from magnetkit_synth.lookalikes import LOOKALIKES, drone_with_clicks, legacy_pattern
from magnetkit_synth.dataset import (
    FIXED_ROOT,
    GRID_DURATION,
    GRID_INTERVAL,
    HELDOUT,
    PATTERNS,
    REGISTER_MIDI,
    REGISTERS,
    SAMPLE_RATE,
    TEMPOS,
    WAVEFORMS,
    WORDS,
    Attributes,
    attribute_grid,
    augmented_caption,
    clip_caption,
    combinations,
    iter_clips,
    make_caption,
    make_clip,
    midi_to_hz,
    paraphrase_caption,
    parse_caption,
    partial_caption,
    write_dataset,
)


@pytest.fixture(scope="module")
def grid_clips():
    """One clean clip of every attribute combination (42), held-out ones included."""
    return [make_clip(seed=5, split="train", index=i, attrs=attrs) for i, attrs in enumerate(attribute_grid())]


# --------------------------------------------------------------------------------- determinism
def test_same_seed_same_clip_and_independent_of_count():
    a = list(iter_clips(3, seed=7, split="train"))
    b = list(iter_clips(5, seed=7, split="train"))[:3]
    for x, y in zip(a, b):
        assert np.array_equal(x.audio, y.audio) and x.caption == y.caption and x.notes == y.notes


def test_different_seeds_and_splits_differ():
    base = make_clip(0, "train", 0)
    assert not np.array_equal(base.audio, make_clip(1, "train", 0).audio)
    assert not np.array_equal(base.audio, make_clip(0, "valid", 0).audio)


def test_clips_are_short_mono_and_in_range():
    for clip in iter_clips(12, seed=3):
        assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
        assert 2.0 <= clip.duration <= 4.0
        assert 0.3 < np.abs(clip.audio).max() <= 0.9
        assert clip.notes and all(0 <= n.onset < clip.duration for n in clip.notes)


def test_grid_timing_keeps_captions_and_pitches_on_fixed_onsets_to_the_end(tmp_path):
    frame = 320 / SAMPLE_RATE  # one speccodec token
    for i, attrs in enumerate(attribute_grid()):
        free, grid = make_clip(4, "train", i, attrs), make_clip(4, "train", i, attrs, timing="grid")
        assert grid.caption == free.caption and grid.duration == GRID_DURATION
        assert [n.pitch for n in grid.notes][:len(free.notes)] == [n.pitch for n in free.notes][:len(grid.notes)]
        if attrs.tempo is None:
            assert [n.onset for n in grid.notes] == [0.0]
            continue
        step = GRID_INTERVAL[attrs.tempo]
        assert round(step / frame, 9).is_integer()  # every onset on a codec frame
        assert [n.onset for n in grid.notes] == pytest.approx([k * step for k in range(len(grid.notes))])
        assert grid.notes[-1].onset < GRID_DURATION <= grid.notes[-1].onset + step  # notes up to the end
        assert analysis.analyse(grid.audio).attributes == attrs
    with pytest.raises(UsageError, match="unknown timing"):
        make_clip(0, "train", 0, timing="swing")
    with pytest.raises(UsageError, match="unknown timing"):
        write_dataset(tmp_path / "bad", 1, timing="swing")
    assert not (tmp_path / "bad").exists()


def test_arpeggio_choice_changes_only_the_arpeggios_pitches(tmp_path):
    for i, attrs in enumerate(attribute_grid()):
        varied = make_clip(4, "train", i, attrs, timing="grid")
        for choice in ("ascending", "fixed"):
            clip = make_clip(4, "train", i, attrs, timing="grid", arpeggio=choice)
            assert clip.caption == varied.caption
            assert [n.onset for n in clip.notes] == [n.onset for n in varied.notes]
            if attrs.pattern != "arpeggio":
                assert np.array_equal(clip.audio, varied.audio)
                continue
            pitches = [n.pitch for n in clip.notes]
            root = FIXED_ROOT[attrs.register] if choice == "fixed" else min(n.pitch for n in varied.notes)
            assert pitches == [root + (0, 4, 7)[k % 3] for k in range(len(pitches))]  # the major triad, upwards
            low, high = REGISTER_MIDI[attrs.register]
            assert low <= min(pitches) and max(pitches) <= high
            assert analysis.analyse(clip.audio).attributes == attrs
    with pytest.raises(UsageError, match="unknown arpeggio"):
        make_clip(0, "train", 0, arpeggio="random")
    with pytest.raises(UsageError, match="unknown arpeggio"):
        write_dataset(tmp_path / "bad", 1, arpeggio="random")
    assert not (tmp_path / "bad").exists()


def test_fixed_kit_plays_one_hit_per_voice_and_changes_only_the_drums(tmp_path):
    def scaled(clip):
        return clip.audio / np.abs(clip.audio).max()

    for i, attrs in enumerate(attribute_grid()):
        varied = make_clip(4, "train", i, attrs, timing="grid", arpeggio="fixed")
        clip = make_clip(4, "train", i, attrs, timing="grid", arpeggio="fixed", kit="fixed")
        assert clip.caption == varied.caption
        assert [n.onset for n in clip.notes] == [n.onset for n in varied.notes]
        if attrs.pattern != "beat":
            assert np.array_equal(clip.audio, varied.audio)
            continue
        assert [n.voice for n in clip.notes][:8] == ["kick", "hat", "snare", "hat"] * 2  # one bar, always
        assert analysis.analyse(clip.audio).attributes == attrs
        # another clip of the same caption is the same sound up to its level; with the varied kit it is not
        other = make_clip(4, "train", i + 100, attrs, timing="grid", arpeggio="fixed", kit="fixed")
        assert np.allclose(scaled(other), scaled(clip), atol=1e-4)
        assert not np.allclose(scaled(make_clip(4, "train", i + 100, attrs, timing="grid")), scaled(varied), atol=0.05)
    with pytest.raises(UsageError, match="unknown kit"):
        make_clip(0, "train", 0, kit="acoustic")
    with pytest.raises(UsageError, match="unknown kit"):
        write_dataset(tmp_path / "bad", 1, kit="acoustic")
    assert not (tmp_path / "bad").exists()


def test_unknown_split_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown split"):
        make_clip(0, "test", 0)


# ------------------------------------------------------------------------------------ held out
def test_grid_and_heldout_partition():
    grid = attribute_grid()
    assert len(grid) == len(set(grid)) == 42
    train = combinations("train")
    assert set(train) | set(HELDOUT) == set(grid) and not set(train) & set(HELDOUT)
    assert combinations("valid") == train


def test_training_still_covers_every_value_and_pair():
    train = combinations("train")
    for name, values in (("waveform", WAVEFORMS), ("register", REGISTERS), ("pattern", PATTERNS)):
        assert {getattr(a, name) for a in train} == set(values)
    assert {a.tempo for a in train} == set(TEMPOS) | {None}
    # composition, not unseen sounds: every held-out waveform/register pair is trained elsewhere
    assert {(a.waveform, a.register) for a in HELDOUT} <= {(a.waveform, a.register) for a in train}


def test_heldout_combinations_never_drawn_for_training():
    heldout = set(HELDOUT)
    for split in ("train", "valid"):
        drawn = {clip_caption(11, split, i)[0] for i in range(2000)}
        assert drawn == set(combinations("train"))  # all of them drawn, none held out
    assert {clip_caption(11, "heldout", i)[0] for i in range(200)} == heldout
    clip = make_clip(11, "train", 5)
    assert (clip.attributes, clip.caption) == clip_caption(11, "train", 5)


# -------------------------------------------------------------------------------------- captions
def test_captions_name_every_attribute_and_parse_back():
    phrasings = set()
    for i in range(500):
        attrs, caption = clip_caption(2, "train", i)
        for name in ("waveform", "register", "tempo", "pattern"):
            value = getattr(attrs, name)
            if value is not None:
                assert any(word in caption for word in WORDS[name][value]), (caption, name)
        assert parse_caption(caption) == {"waveform": attrs.waveform, "register": attrs.register,
                                          "tempo": attrs.tempo, "pattern": attrs.pattern}, caption
        phrasings.add(re.sub(r"\w[\w-]*", "w", caption))
    assert len(phrasings) >= 6  # several templates, not one


def test_parse_free_prompts():
    assert parse_caption("a fast high square-wave arpeggio") == {
        "waveform": "square", "register": "high", "tempo": "fast", "pattern": "arpeggio"}
    assert parse_caption("Slow deep drums") == {"waveform": "drums", "register": "low", "tempo": "slow",
                                                "pattern": "beat"}
    assert parse_caption("birdsong") == {"waveform": None, "register": None, "tempo": None, "pattern": None}


# ----------------------------------------------------------------------------------------- files
def test_write_dataset_files_and_manifest(tmp_path):
    from magnetkit.train.manifest import read_items

    manifest = write_dataset(tmp_path / "data", 4, seed=1, split="heldout")
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(records) == 4
    for i, record in enumerate(records):
        assert not record["path"].startswith("/")
        wav, sr = sf.read(manifest.parent / record["path"])
        clip = make_clip(1, "heldout", i)
        assert sr == SAMPLE_RATE and len(wav) == len(clip.audio)
        assert np.abs(wav - clip.audio).max() < 1e-3  # 16-bit PCM
        assert record["caption"] == clip.caption
        assert Attributes(**record["attributes"]) in HELDOUT
        assert [n["onset"] for n in record["notes"]] == [n.onset for n in clip.notes]
    items = read_items(tmp_path / "data")  # the training loader reads it as it is
    assert [item.caption for item in items] == [r["caption"] for r in records]


def test_write_dataset_rejects_no_clips(tmp_path):
    with pytest.raises(UsageError):
        write_dataset(tmp_path, 0)


# ------------------------------------------------------------------------------------- the judge
def test_analysis_reads_every_combination(grid_clips):
    read = [(c.attributes, analysis.analyse(c.audio)) for c in grid_clips]
    assert [(truth, got.attributes) for truth, got in read if truth != got.attributes] == []
    assert all(got.full_length for _, got in read)


def test_arpeggios_are_three_notes_changing_pitch(grid_clips):
    for clip in grid_clips:
        result = analysis.analyse(clip.audio)
        if clip.attributes.pattern == "arpeggio":
            assert len(result.notes) >= 3 and sum(s >= 0.08 for s in result.note_shares) == 3
            interval = clip.notes[1].onset - clip.notes[0].onset
            assert abs(result.median_ioi - interval) < 0.02  # tempo from the note changes
        elif clip.attributes.pattern == "sustained":
            assert result.note_shares[0] > 0.9


def test_analysis_accuracy_on_random_clips():
    accuracy = analysis.attribute_accuracy(n_clips=20, seed=99, split="heldout")
    assert accuracy == {"waveform": 1.0, "register": 1.0, "tempo": 1.0, "pattern": 1.0, "all": 1.0,
                        "full length": 1.0}


def test_onsets_match_the_generator(grid_clips):
    found = total = 0
    errors = []
    for clip in grid_clips:
        truth = np.array([n.onset for n in clip.notes])
        matched, err = analysis.match_onsets(truth, analysis.onset_times(clip.audio), tolerance=0.02)
        found += len(matched)
        total += len(truth)
        errors.extend(np.abs(err))
    assert found / total >= 0.98
    assert np.median(errors) <= 0.006


def test_note_f0_matches_the_generator(grid_clips):
    for clip in grid_clips:
        if clip.attributes.waveform == "drums":
            continue
        f0, _ = analysis.f0_track(clip.audio)
        note = clip.notes[0]
        end = clip.notes[1].onset if len(clip.notes) > 1 else clip.duration
        frames = f0[int((note.onset + 0.03) * 200): int((end - 0.03) * 200)]
        measured = np.nanmedian(frames)
        assert abs(measured / midi_to_hz(note.pitch) - 1) < 0.01, (clip.attributes, measured)


def test_noise_is_not_tonal_and_a_tone_is():
    rng = np.random.default_rng(0)
    noise = analysis.analyse(0.3 * rng.standard_normal(SAMPLE_RATE))
    assert not noise.tonal and noise.attributes.waveform == "drums"
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = analysis.analyse(0.5 * np.sin(2 * np.pi * 440 * t))
    assert tone.tonal and abs(tone.median_f0 - 440) < 2 and tone.attributes.waveform == "sine"
    assert tone.attributes.register == "mid" and tone.attributes.pattern == "sustained"


def test_waveform_rule_on_ideal_profiles():
    n = np.arange(1, 11)

    def db(a):
        return 20 * np.log10(np.maximum(a / a[0], 1e-3))

    assert analysis.waveform_from_profile(db((n == 1) + 1e-9)) == "sine"
    assert analysis.waveform_from_profile(db(np.where(n % 2 == 1, 1.0 / n, 1e-9))) == "square"
    assert analysis.waveform_from_profile(db(1.0 / n)) == "saw"
    assert analysis.waveform_from_profile(db(1.0 / n ** 2.5)) == "pluck"


def test_accuracy_script_prints_every_attribute(capsys):
    assert analysis.main(["--clips", "3", "--split", "heldout"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["waveform", "register", "tempo", "pattern", "all", "full-length"]


def test_partial_captions_name_a_subset_and_leave_the_audio_alone(tmp_path):
    full = write_dataset(tmp_path / "full", 30, seed=3, split="train")
    part = write_dataset(tmp_path / "part", 30, seed=3, split="train", omit_attributes=0.5)
    rows = [json.loads(line) for line in full.read_text().splitlines()]
    partial = [json.loads(line) for line in part.read_text().splitlines()]
    shortened = 0
    for a, b in zip(rows, partial):
        assert a["attributes"] == b["attributes"]
        assert np.array_equal(sf.read(full.parent / a["path"])[0], sf.read(part.parent / b["path"])[0])
        named = {k: v for k, v in parse_caption(b["caption"]).items() if v is not None}
        assert named.items() <= {k: v for k, v in a["attributes"].items() if v is not None}.items()
        assert named["pattern"] == a["attributes"]["pattern"]  # the pattern is always named
        shortened += b["caption"] != a["caption"]
    assert 10 <= shortened < 30
    assert partial_caption(Attributes("sine", "low", "slow", "arpeggio"), np.random.default_rng(0), 0.0) is None
    with pytest.raises(UsageError, match="omit_attributes"):
        write_dataset(tmp_path / "bad", 1, omit_attributes=1.5)


# ------------------------------------------------------------------------- judge: look-alikes
@pytest.mark.parametrize("kind", list(LOOKALIKES))
def test_the_judge_rejects_lookalikes(kind):
    lookalike = LOOKALIKES[kind]
    for i in range(3):
        result = analysis.analyse(lookalike.make(np.random.default_rng([11, i])))
        assert lookalike.check(result), (kind, result.attributes, result.full_length)


def test_the_previous_rule_was_fooled_by_a_drone_with_clicks():
    result = analysis.analyse(drone_with_clicks(np.random.default_rng(0)))
    assert legacy_pattern(result) == "arpeggio" and result.attributes.pattern == "sustained"


def test_note_segments_merge_same_pitch_and_drop_glitches():
    hz = midi_to_hz
    f0 = np.full(200, hz(60))  # 1 s at 5 ms
    f0[50:53] = hz(72)  # a 15 ms glitch
    f0[100:104] = np.nan  # a dip in level
    f0[150:] = hz(64)
    notes = analysis.note_segments(f0)
    assert [round(n.pitch) for n in notes] == [60, 64]
    assert notes[1].start == pytest.approx(0.75)
    assert analysis.pitch_classes(notes) == pytest.approx([0.75, 0.25], abs=0.01)  # a merged note spans its dip


def test_regular_period_allows_missed_hits_and_rejects_random_times():
    grid = np.arange(16) * 0.15
    assert analysis.regular_period(grid) == pytest.approx(0.15)
    assert analysis.regular_period(np.delete(grid, [3, 7, 11])) == pytest.approx(0.15)
    times = np.sort(np.random.default_rng(3).uniform(0, 3, 12))
    assert analysis.regular_period(times) is None
    assert analysis.regular_period(np.array([0.1, 0.5])) is None


def test_silence_is_measured_and_judged():
    silent = analysis.analyse(np.zeros(2 * SAMPLE_RATE))
    assert silent.attributes.pattern == "silence" and not silent.full_length
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 220 * t) * (t < 1.5)
    last, longest, tail = analysis.silences(tone)
    assert last == pytest.approx(1.5, abs=0.03) and tail == pytest.approx(1.5, abs=0.03) and longest == tail
    result = analysis.analyse(tone)
    assert result.attributes.pattern == "sustained" and not result.full_length


def test_judge_accuracy_command(capsys):
    from magnetkit.cli import main

    assert main(["judge-accuracy", "--clips", "2", "--lookalikes", "1"]) == 0
    out = capsys.readouterr().out
    assert "clean" in out and "drone with clicks" in out and "full length" in out
    assert main(["judge-accuracy", "--clips", "0"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["judge-accuracy", "--clips", "2", "--lookalikes", "0", "--timing", "grid", "--arpeggio", "fixed"]) == 0
    assert "grid timing, fixed arpeggios" in capsys.readouterr().out


# ----------------------------------------------------------------------- captions: paraphrases
def test_augmented_captions_parse_back_and_vary():
    rng = np.random.default_rng(0)
    seen = set()
    for attrs in attribute_grid():
        for _ in range(5):
            caption = augmented_caption(attrs, rng)
            seen.add(caption)
            named = {k: v for k, v in parse_caption(caption).items() if v is not None}
            assert named.items() <= {k: v for k, v in asdict(attrs).items() if v is not None}.items(), caption
            assert named["pattern"] == attrs.pattern
    assert len(seen) > 150
    assert any(word in " ".join(seen) for word in ("brisk", "unhurried", "bassy", "bright"))


def test_paraphrases_name_everything_and_never_appear_in_training():
    rng = np.random.default_rng(1)
    training = {make_caption(a, rng) for a in attribute_grid() for _ in range(20)}
    training |= {augmented_caption(a, rng, omit=0.3) for a in attribute_grid() for _ in range(50)}
    training |= {partial_caption(a, rng, 0.5) for a in attribute_grid() for _ in range(20)} - {None}
    joining = re.compile(r"\b(and|the|with|way|plays)\b")
    assert not any(joining.search(caption) for caption in training)  # no training phrasing uses these words
    for attrs in HELDOUT:
        for _ in range(10):
            caption = paraphrase_caption(attrs, rng)
            assert joining.search(caption) and caption not in training
            assert parse_caption(caption) == asdict(attrs), caption
