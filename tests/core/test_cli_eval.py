"""`magnetkit eval` and `magnetkit components --kind embedder` from the command line."""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "evaluation"))
from clips import write_set  # noqa: E402

from magnetkit.cli import main  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, "-m", "magnetkit.cli", *args], capture_output=True, text=True)


def test_components_lists_embedders(capsys):
    assert main(["components", "--kind", "embedder"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "mel" in {line.split()[1] for line in lines}
    assert all(line.split()[0] == "embedder" for line in lines)


def test_eval_writes_the_report(tmp_path, capsys):
    write_set(tmp_path / "ref", 4, seed=0)
    write_set(tmp_path / "gen", 3, seed=1)
    (tmp_path / "gen" / "bad.ogg").write_bytes(b"OggS broken")
    out = tmp_path / "report.json"
    code = main(["eval", str(tmp_path / "ref"), str(tmp_path / "gen"), "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache"), "--per-clip", str(tmp_path / "clips.csv")])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["embedder"] == "mel" and set(report["metrics"]) == {"fad", "kad"}
    assert (report["n_reference"], report["n_generated"], report["skipped"]) == (4, 3, 1)
    printed = capsys.readouterr().out
    assert "fad" in printed and "skipped generated" in printed
    assert len((tmp_path / "clips.csv").read_text().splitlines()) == 4


def test_bad_input_is_one_error_line(tmp_path, capsys):
    write_set(tmp_path / "ref", 2, seed=0)
    ref = str(tmp_path / "ref")
    cases = [
        [str(tmp_path / "nope"), ref],
        [ref, ref, "--metrics", "fad,bogus"],
        [ref, ref, "--embedder", "nonesuch"],
        [ref, ref, "--out", str(tmp_path / "no" / "dir" / "r.json")],
        [ref, ref, "--param", "n_mels=two"],
    ]
    for args in cases:
        assert main(["eval", *args, "--quiet", "--no-cache"]) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, lines)
    # and from a real process: no traceback reaches the terminal
    result = run("eval", str(tmp_path / "nope"), ref, "--quiet", "--no-cache")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
