"""How fast the light ``magnetkit`` commands start, and whether they import torch.

Each command runs in a fresh Python process (``python -m magnetkit.cli ...``, as the
``magnetkit`` script does) several times; the table gives the median and the fastest wall
time, the bare interpreter's start for reference, and which heavy modules the command
imported (torch, transformers, numba). Commands run from a temporary folder so only installed
(or editable) code is measured.

    python -m benchmarks.startup                 # 7 runs per command, a markdown table
    python -m benchmarks.startup --runs 15 --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HEAVY = ("torch", "transformers", "numba")

# (label, argv): the commands that must start fast (issue 15), then one that needs torch.
COMMANDS: list[tuple[str, list[str]]] = [
    ("--help", ["--help"]),
    ("--version", ["--version"]),
    ("recipes", ["recipes"]),
    ("validate magnet-small-10secs", ["validate", "magnet-small-10secs"]),
    ("validate default-model --show", ["validate", "default-model", "--show"]),
    ("components", ["components"]),
    ("plugins", ["plugins"]),
    ("generate --help", ["generate", "--help"]),
]

# Runs the CLI in-process, then reports which heavy modules it imported (on stderr, last line).
_PROBE = (
    "import sys\n"
    "from magnetkit.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code or 0\n"
    f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str], cwd: str) -> tuple[float, float, list[str]]:
    """Wall and CPU seconds of one fresh process running ``magnetkit ARGV``, and the heavy modules it imported.

    CPU time (user + system) is reported beside wall time because on a shared machine the wall
    time also counts waiting for a core.
    """
    cpu0, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], cwd=cwd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if proc.returncode != 0:  # reported in the table (e.g. an older version without the command)
        return wall, cpu, [f"FAILED: exit {proc.returncode}"]
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")][-1]
    heavy = [m for m in line[len("HEAVY="):].split(",") if m]
    return wall, cpu, heavy


def interpreter_start(runs: int, cwd: str) -> float:
    """Median wall seconds of ``python -c pass``: the floor under every command."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], cwd=cwd, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(runs: int) -> dict:
    """Time every command ``runs`` times (after one warm-up run that fills the OS file cache)."""
    rows = []
    with tempfile.TemporaryDirectory() as cwd:
        floor = interpreter_start(runs, cwd)
        for label, argv in COMMANDS:
            run_once(argv, cwd)  # warm-up: bytecode and file cache
            results = [run_once(argv, cwd) for _ in range(runs)]
            times = [wall for wall, _, _ in results]
            rows.append({"command": f"magnetkit {label}", "median_s": statistics.median(times), "min_s": min(times),
                         "cpu_s": statistics.median(cpu for _, cpu, _ in results),
                         "heavy": sorted(set().union(*(h for _, _, h in results)))})
    return {"date": dt.date.today().isoformat(), "runs": runs, "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average": os.getloadavg(), "interpreter_s": floor, "rows": rows}


def markdown(result: dict) -> str:
    """The result as the table RESULTS.md holds."""
    lines = [f"{result['date']}, Python {result['python']}, {result['cpus']} CPUs, median of {result['runs']} "
             f"fresh processes after one warm-up; `python -c pass` takes {result['interpreter_s']:.3f} s; "
             f"load average at the end {result['load_average'][0]:.1f}.",
             "", "| command | median wall s | fastest wall s | median CPU s | heavy modules imported (or failure) |",
             "|---|---:|---:|---:|---|"]
    for row in result["rows"]:
        heavy = ", ".join(row["heavy"]) or "none"
        lines.append(f"| `{row['command']}` | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['cpu_s']:.3f} | {heavy} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command (default 7)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = measure(args.runs)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 1 if any(h.startswith("FAILED") for row in result["rows"] for h in row["heavy"]) else 0


if __name__ == "__main__":
    sys.exit(main())
