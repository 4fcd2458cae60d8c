"""Bad input to `magnetkit generate`: one `error:` line and a non-zero exit, checked before any model loads."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import magnetkit.loading
from magnetkit.cli import main
from magnetkit.commands import generate
from magnetkit.recipe import Recipe

FAST = ["generation.duration=0.5", "generation.decoding_steps=[2,1,1,1]"]


@pytest.fixture(scope="module")
def pipeline():
    """The embedded default model with a few decoding steps (a clip in well under a second)."""
    return magnetkit.loading.load(None, FAST, device="cpu")


@pytest.fixture
def loads(monkeypatch, pipeline):
    """Replace model loading by the preloaded pipeline; record what the command asked to load."""
    calls = []

    def fake_load(source=None, overrides=(), *, device=None):
        calls.append((source, list(overrides)))
        return pipeline

    monkeypatch.setattr(magnetkit.loading, "load", fake_load)
    return calls


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def setup_files(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "00_a_tune.wav").write_bytes(b"old")
    (tmp_path / "codes.npy").write_bytes(b"old")
    sf.write(tmp_path / "one.wav", np.zeros(1, dtype=np.float32), 16000)
    (tmp_path / "latin1.txt").write_bytes("a caf\xe9 tune\n".encode("latin-1"))
    (tmp_path / "prompts.txt").write_text("a tune\n")
    (tmp_path / "two.txt").write_text("a tune\nanother tune\n")
    (tmp_path / "empty.txt").write_text("\n \n")


# (arguments, exit code, words the one error line must hold); {t} is the test's folder.
CASES = [
    (["a tune", "-o", "{t}/afile"], 2, "is a file"),
    (["a tune", "-o", "{t}/afile/sub"], 2, "cannot be made"),
    (["a tune", "-o", "{t}/new", "--codes-out", "{t}/codes.txt"], 2, "must end in .npy"),
    (["a tune", "-o", "{t}/new", "--codes-out", "{t}/afile/codes.npy"], 2, "--codes-out"),
    (["a tune", "-o", "{t}/new", "--codes-out", "{t}/out"], 2, "must end in .npy"),
    (["a tune", "-o", "{t}/new", "--codes-out", "{t}/codes.npy"], 2, "already exists"),
    (["a tune", "-o", "{t}/out"], 2, "00_a_tune.wav' already exists; pass --overwrite"),
    (["a caf\udce9 tune", "-o", "{t}/new"], 2, "not valid UTF-8"),
    (["a tune", "--negative", "no \udcff", "-o", "{t}/new"], 2, "not valid UTF-8"),
    (["a tune", "--seed", str(10**30), "-o", "{t}/new"], 2, "--seed must be between 0 and"),
    (["a tune", "--seed", "-1", "-o", "{t}/new"], 2, "--seed must be between 0 and"),
    (["a tune", "generaton.duration=1", "-o", "{t}/new"], 2, "did you mean 'generation'"),
    (["a tune", "-o", "{t}/new", "smapler.top_p=0.5"], 2, "did you mean 'sampler'"),
    (["a tune", "--threads", "0"], 2, "--threads must be at least 1"),
    (["a tune", "--batch-size", "4", "-o", "{t}/new"], 2, "--batch-size goes with --prompts"),
    (["-o", "{t}/new"], 2, "give at least one text"),
    (["a tune", " ", "-o", "{t}/new"], 2, "a text prompt is empty"),
    (["a tune", "--negative", "", "-o", "{t}/new"], 2, "--negative is empty"),
    (["a tune", "-o", "/proc/magnetkit-test"], 2, "cannot be written"),
    (["a tune", "--prompt-audio", "{t}/missing.wav", "-o", "{t}/new"], 1, "does not exist"),
    (["--prompts", "{t}/missing.txt", "-o", "{t}/new"], 2, "does not exist"),
    (["--prompts", "{t}/latin1.txt", "-o", "{t}/new"], 2, "line 1 is not valid UTF-8"),
    (["--prompts", "{t}/empty.txt", "-o", "{t}/new"], 2, "holds no prompts"),
    (["--prompts", "{t}", "-o", "{t}/new"], 2, "is not a file"),
    (["--prompts", "{t}/prompts.txt", "-o", "{t}/afile"], 2, "is a file"),
    (["--prompts", "{t}/prompts.txt", "--batch-size", "0", "-o", "{t}/new"], 2, "--batch-size must be at least 1"),
    (["--prompts", "{t}/prompts.txt", "--batch-size", "lots", "-o", "{t}/new"], 2, "expected a whole number or auto"),
    (["--prompts", "{t}/prompts.txt", "--memory-budget", "2", "-o", "{t}/new"], 2, "goes with --batch-size auto"),
    (["--prompts", "{t}/prompts.txt", "--batch-size", "auto", "--memory-budget", "0", "-o", "{t}/new"], 2,
     "--memory-budget must be a positive"),
    (["a tune", "--memory-budget", "2", "-o", "{t}/new"], 2, "--memory-budget goes with --prompts"),
    (["--prompts", "{t}/prompts.txt", "--codes-out", "{t}/c.npy", "-o", "{t}/new"], 2, "cannot be combined"),
    (["default-model", "a tune", "--prompts", "{t}/prompts.txt", "-o", "{t}/new"], 2, "not both"),
    (["no-such-model", "--prompts", "{t}/prompts.txt", "-o", "{t}/new"], 2, "no recipe file or shipped recipe"),
    (["--prompts", "{t}/two.txt", "--seed", str(2**63 - 1), "-o", "{t}/new"], 2, "for 2 prompts"),
]


@pytest.mark.parametrize("args, code, words", CASES, ids=[f"{i}:{c[2][:30]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_error_line_before_any_model_loads(tmp_path, capsys, loads, args, code, words):
    setup_files(tmp_path)
    argv = ["generate", *[a.replace("{t}", str(tmp_path)) for a in args]]
    assert main(argv) == code
    assert words in one_error_line(capsys.readouterr().err)
    assert loads == []  # refused before loading anything
    assert not (tmp_path / "new").exists()  # and before writing anything
    assert (tmp_path / "out" / "00_a_tune.wav").read_bytes() == b"old"


def test_device_cuda_without_cuda_is_one_line(capsys, loads, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["generate", "a tune", "--device", "cuda"]) == 2
    assert "no CUDA device" in one_error_line(capsys.readouterr().err)


def test_one_sample_prompt_audio_is_one_line(tmp_path, capsys, loads):
    setup_files(tmp_path)
    assert main(["generate", "a tune", "--prompt-audio", str(tmp_path / "one.wav"), "-o", str(tmp_path / "new")]) == 2
    assert "at least one codec frame" in one_error_line(capsys.readouterr().err)
    assert not list((tmp_path / "new").glob("*.wav")) if (tmp_path / "new").exists() else True


def test_overrides_after_options_are_overrides(tmp_path, capsys, loads):
    assert main(["generate", "a tune", "-o", str(tmp_path / "o"), "--seed", "1", "generation.duration=0.5",
                 "--quiet", "sampler.top_p=0.8"]) == 0
    assert loads == [(None, ["generation.duration=0.5", "sampler.top_p=0.8"])]
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["00_a_tune.wav"]


def test_a_long_first_prompt_is_a_text(tmp_path, capsys, loads):
    text = "a fast high square-wave arpeggio " * 12  # ~400 bytes: longer than a file name may be
    assert main(["generate", text, "-o", str(tmp_path / "o"), "--quiet"]) == 0
    assert loads == [(None, [])]
    assert len(list((tmp_path / "o").glob("00_*.wav"))) == 1


def test_overwrite_replaces_and_says_so(tmp_path, capsys, loads):
    setup_files(tmp_path)
    assert main(["generate", "a tune", "-o", str(tmp_path / "out"), "--overwrite", "--quiet"]) == 0
    assert (tmp_path / "out" / "00_a_tune.wav").read_bytes()[:4] == b"RIFF"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left


def test_every_recipe_section_makes_an_override():
    for section in Recipe.model_fields:
        assert generate.split_args(["a tune", f"{section}.x=1"], None) == (None, ["a tune"], [f"{section}.x=1"])


def test_a_text_with_spaces_before_equals_stays_a_text():
    assert generate.split_args(["the mood.of it=calm"], None) == (None, ["the mood.of it=calm"], [])


def test_with_prompts_a_lone_positional_is_the_source():
    assert generate.split_args(["default-model", "sampler.top_p=0.8"], None, batch=True) == (
        "default-model", [], ["sampler.top_p=0.8"])
