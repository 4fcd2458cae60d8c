"""`magnetkit sweep`: a grid of settings, each point generated (resumable) and scored; failures in their row."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from magnetkit.cli import main
from magnetkit.commands.sweep import grid_points, parse_grid, point_name, split_values

FAST = ["generation.duration=0.5", "generation.decoding_steps=[2,1,1,1]"]


def reference(folder, n=4):
    folder.mkdir()
    t = np.arange(8000) / 16000
    for i in range(n):
        sf.write(folder / f"r{i}.wav", (0.2 * np.sin(2 * np.pi * (220 + 60 * i) * t)).astype(np.float32), 16000)
    return folder


def test_grid_values_split_outside_brackets_and_form_the_product():
    assert split_values("1,[1, 0.05],{a: 1, b: 2}, x") == ["1", "[1, 0.05]", "{a: 1, b: 2}", "x"]
    grid = parse_grid(["generation.cfg_max=1,3", "sampler.stage_temperatures=[1,0.05,0.05,0.05],[2,1,1,1]"])
    points = grid_points(grid)
    assert len(points) == 4 and points[1] == {"generation.cfg_max": "1",
                                              "sampler.stage_temperatures": "[2,1,1,1]"}
    assert len({point_name(p) for p in points}) == 4


@pytest.mark.parametrize("spec, words", [
    ("generaton.cfg_max=1,2", "did you mean 'generation'"),
    ("sampler.top_p", "not of the form KEY=V1,V2"),
    ("sampler.top_p=0.5,,0.9", "empty value"),
    ("sampler.top_p=0.5,0.5", "repeats a value"),
    ("sampler.top_p=0.5 --metrics fad,nope", "unknown metric(s) 'nope'"),
    ("sampler.top_p=0.5 --embedder nope", "nope"),
    ("sampler.top_p=0.5 some text", "not texts"),
])
def test_bad_grid_is_one_error_line(tmp_path, capsys, spec, words):
    (tmp_path / "p.txt").write_text("a tune\n")
    spec, *more = spec.split(" ", 1)
    more = more[0].split(" ") if more else []
    code = main(["sweep", *more, "--prompts", str(tmp_path / "p.txt"), "--grid", spec, "--reference",
                 str(reference(tmp_path / "ref")), "-o", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_bad_reference_and_output_are_refused_before_work(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("a tune\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    base = ["sweep", "--prompts", str(tmp_path / "p.txt"), "--grid", "generation.cfg_max=1,2"]
    assert main([*base, "--reference", str(tmp_path / "empty"), "-o", str(tmp_path / "s")]) == 2
    assert "holds no audio" in capsys.readouterr().err
    assert main([*base, "--reference", str(reference(tmp_path / "ref")), "-o", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_scores_every_point_reports_a_failing_one_and_resumes(tmp_path, capsys, one_thread):
    (tmp_path / "p.txt").write_text("a fast high square-wave arpeggio\na slow low sine note\na fast mid saw beat\n")
    out = tmp_path / "sweep"
    argv = ["sweep", "--prompts", str(tmp_path / "p.txt"), "--reference", str(reference(tmp_path / "ref")),
            "-o", str(out), "--seed", "0", "--grid", "generation.cfg_max=1,3", "--grid", "sampler.top_p=0.9,7",
            *FAST]
    assert main(argv) == 1  # every point ran; the exit code says some failed
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:4] == ["generation.cfg_max", "sampler.top_p", "fad", "kad"]
    assert [(r["generation.cfg_max"], r["sampler.top_p"]) for r in rows] == [("1", "0.9"), ("1", "7"),
                                                                           ("3", "0.9"), ("3", "7")]
    good, bad = [r for r in rows if r["sampler.top_p"] == "0.9"], [r for r in rows if r["sampler.top_p"] == "7"]
    assert all(r["error"] == "" and float(r["fad"]) >= 0 and float(r["seconds_per_clip"]) > 0 for r in good)
    assert all("sampler.top_p" in r["error"] and r["fad"] == "" for r in bad)
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    clips = sorted(out.glob("points/*/*.wav"))
    assert len(clips) == 6
    stamps = [p.stat().st_mtime_ns for p in clips]
    # a rerun regenerates nothing and gives the same table
    assert main(argv) == 1
    assert [p.stat().st_mtime_ns for p in clips] == stamps
    with open(out / "results.csv") as f:
        assert list(csv.DictReader(f)) == rows


def test_batch_size_auto_is_measured_per_point_and_recorded(tmp_path, capsys, one_thread):
    (tmp_path / "p.txt").write_text("a slow low sine note\na fast mid saw beat\n")
    out = tmp_path / "sweep"
    argv = ["sweep", "--prompts", str(tmp_path / "p.txt"), "--reference", str(reference(tmp_path / "ref")),
            "-o", str(out), "--seed", "0", "--grid", "generation.cfg_max=1,3", "--batch-size", "auto",
            "--memory-budget", "1", *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("--batch-size auto:") == 2  # one measurement per point
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["error"] for r in rows] == ["", ""]
    assert all(r["batch_size"] in ("1", "2") for r in rows)


def test_bad_batch_size_is_refused_before_work(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("a tune\n")
    base = ["sweep", "--prompts", str(tmp_path / "p.txt"), "--grid", "generation.cfg_max=1,2", "--reference",
            str(reference(tmp_path / "ref")), "-o", str(tmp_path / "s")]
    assert main([*base, "--batch-size", "many"]) == 2
    assert "expected a whole number or auto" in capsys.readouterr().err
    assert main([*base, "--memory-budget", "2"]) == 2
    assert "--memory-budget" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
