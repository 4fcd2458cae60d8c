"""The rescoring/hybrid benchmark runs and prints every mode in one table (tiny settings)."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rescoring_hybrid.py"


def test_benchmark_prints_every_mode_side_by_side(capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_rescoring_hybrid", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    assert bench.main(["--duration", "4", "--steps", "2,1,1,1", "--repeats", "1", "--width", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = {line[:34].strip(): line[34:].split() for line in lines[2:]}
    assert list(table) == ["MAGNeT", "MAGNeT + MusicGen rescoring", "hybrid, MusicGen 1 s + MAGNeT",
                           "hybrid, MusicGen 3 s + MAGNeT", "Hybrid-MAGNeT (one model), 1 s",
                           "Hybrid-MAGNeT (one model), 3 s", "MusicGen alone (autoregressive)"]
    assert float(table["MAGNeT"][1]) == 1.0 and float(table["MAGNeT"][3]) == 0.0  # its own baseline, no AR part
    assert 0 < float(table["hybrid, MusicGen 1 s + MAGNeT"][3]) < float(table["hybrid, MusicGen 3 s + MAGNeT"][3])
