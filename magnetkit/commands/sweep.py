"""``magnetkit sweep``: generate a prompt file at every point of a settings grid and score each point.

Each point is a batch run (`magnetkit.batch`) into ``OUT/points/<point>/``, so a rerun resumes:
finished points are not regenerated, and their scores are reused when the evaluation settings
are the same. A point that fails (an invalid value, a crash) gets its error in its row of
``results.csv`` and the others go on.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from magnetkit.commands.generate import (
    _IntermixedParser,
    add_batch_size_options,
    batch_size_arg,
    check_options,
    looks_like_source,
    run_job,
    sections,
    set_threads,
    split_args,
    unknown_section,
)
from magnetkit.errors import UsageError

EXAMPLES = """examples:
  magnetkit synth-data data/ref --clips 40 --split heldout --seed 1
  magnetkit sweep --prompts prompts.txt --reference data/ref -o sweeps/cfg-temp --seed 0 \\
      --grid generation.cfg_max=1,3,6 --grid "sampler.stage_temperatures=[0.5,0.05,0.05,0.05],[1,0.05,0.05,0.05]"
  magnetkit sweep magnet-small-10secs --prompts prompts.txt --reference musiccaps/ -o sweeps/steps \\
      --grid "generation.decoding_steps=[20,10,10,10],[10,5,5,5]" --grid scheduler.name=cosine,linear
  torchrun --nproc_per_node 8 --no-python magnetkit sweep ... (every point's clips shared over the ranks)

Writes OUT/results.csv (a column per grid key, a column per metric, seconds_per_clip, batch_size, clips, error) and
OUT/results.png. Values are YAML (lists in brackets; commas inside brackets do not split).
"""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sweep``."""
    help_text = "generate a prompt file at every point of a settings grid and score each point"
    p = subparsers.add_parser("sweep", help=help_text, epilog=EXAMPLES,
                              description=help_text[0].upper() + help_text[1:] + ".",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.__class__ = _IntermixedParser  # overrides may come after options, as for generate
    p.add_argument("args", nargs="*", metavar="[SOURCE] [key=value...]",
                   help="optional source (recipe, checkpoint, hub id), then recipe overrides for every point")
    p.add_argument("--prompts", required=True, metavar="FILE", help="one prompt per line")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="a recipe key and its values (repeatable: the grid is the cartesian product)")
    p.add_argument("--reference", required=True, metavar="DIR", help="folder of reference audio")
    p.add_argument("--embedder", default="mel", help="embedder for the metrics (default: mel)")
    p.add_argument("--metrics", default="fad,kad", help="comma-separated metrics (default: fad,kad)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="base seed: clip i uses seed+i at every point (default 0)")
    add_batch_size_options(p, "clips per forward (default 1); auto measures, at every point (its settings change "
                              "the cost), the batch with the most clips per second within --memory-budget")
    p.add_argument("--negative", help="a text to guide away from (negative prompt)")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available; under torchrun cuda:LOCAL_RANK)")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--overwrite", action="store_true", help="regenerate every point")
    p.set_defaults(func=run, source=None, codes_out=None, prompt_audio=None)


# ------------------------------------------------------------------------------- the grid
def split_values(text: str) -> list[str]:
    """``a,[1,2],b`` -> ``["a", "[1,2]", "b"]``: commas split only outside brackets and braces."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += (char in "[{") - (char in "]}")
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``--grid KEY=V1,V2`` options -> [(key, [values])], checked before any work."""
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", key):
            raise UsageError(f"--grid {spec!r} is not of the form KEY=V1,V2 (e.g. sampler.top_p=0.8,0.95)")
        if key.split(".")[0] not in sections():
            raise UsageError("--grid " + unknown_section(key.split(".")[0], spec))
        values = split_values(raw)
        if any(not v for v in values):
            raise UsageError(f"--grid {spec!r} has an empty value")
        if any(key == k for k, _ in grid):
            raise UsageError(f"--grid {key} is given twice; list all its values in one --grid")
        if len(set(values)) != len(values):
            raise UsageError(f"--grid {spec!r} repeats a value")
        grid.append((key, values))
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every point of the grid (the cartesian product), the first key varying slowest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in grid))]


def point_name(point: dict[str, str]) -> str:
    """A folder name for a point, readable and unique (a hash when the values are long)."""
    text = ",".join(f"{k}={v}" for k, v in point.items())
    name = re.sub(r"[^A-Za-z0-9.=,+-]+", "_", text)
    if len(name) > 100:
        name = name[:80] + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return name


# ------------------------------------------------------------------------------- running
def run(args: argparse.Namespace) -> int:
    """Check everything, then generate and score each point; write results.csv and results.png."""
    from magnetkit.batch import BatchJob, check_out_dir, make_out_dir, read_prompts

    check_options(args)
    args.batch_size = batch_size_arg(args.batch_size)
    grid = parse_grid(args.grid)
    source, rest, overrides = split_args(args.args, None, batch=True)
    if source is not None and not looks_like_source(source):
        rest = [source]
    if rest:
        raise UsageError(f"sweep takes an optional source and key=value overrides, not texts (got {rest[0]!r}); "
                         "put the prompts in --prompts FILE")
    metrics = check_scoring(args.embedder, args.metrics)
    out = Path(args.out)
    check_out_dir(out)
    check_reference(Path(args.reference))
    prompts = read_prompts(args.prompts)
    jobs = [(point, BatchJob(prompts, out / "points" / point_name(point), source=source,
                             overrides=[*overrides, *(f"{k}={v}" for k, v in point.items())], seed=args.seed,
                             batch_size=args.batch_size, negative=args.negative, overwrite=args.overwrite,
                             memory_budget_gib=args.memory_budget))
            for point in grid_points(grid)]
    for _, job in jobs:
        job.check()
    make_out_dir(out)
    set_threads(args.threads)
    ranks = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    return sweep_ranks(jobs, args, metrics, out) if ranks else sweep(jobs, args, metrics, out)


def check_scoring(embedder: str, metrics: str) -> list[str]:
    """The metric names, known, and an embedder that is registered (before any generation)."""
    from magnetkit.evaluation import METRICS
    from magnetkit.registry import get_registry

    names = [m.strip().lower() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise UsageError(f"--metrics: unknown metric(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"choose from {', '.join(METRICS)}")
    get_registry().get("embedder", embedder)  # an unknown name lists the available ones
    return names


def check_reference(folder: Path) -> None:
    """The reference folder exists and holds audio (checked before any generation)."""
    if not folder.is_dir():
        raise UsageError(f"--reference {str(folder)!r} is not a folder")
    if not any(p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3") for p in folder.rglob("*")):
        raise UsageError(f"--reference {str(folder)!r} holds no audio files (wav, flac, ogg, mp3)")


def sweep(jobs: list, args: argparse.Namespace, metrics: list[str], out: Path, rank: int = 0, world: int = 1,
          sync=None, device: str | None = None) -> int:
    """Every point in turn; rank 0 scores and writes the results after each point."""
    rows: list[dict[str, Any]] = []
    for number, (point, job) in enumerate(jobs, start=1):
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        if rank == 0:
            print(f"point {number}/{len(jobs)}: {label}", flush=True)
        row = run_point(point, job, args, metrics, rank, world, sync, device or args.device)
        if rank == 0:
            rows.append(row)
            write_results(out, list(point), rows)
            shown = ", ".join(f"{k} {row[k]:.4g}" for k in row.get("_metrics", []))
            print(f"  {shown or 'error: ' + row['error']}; {row['seconds_per_clip'] or '-'} s per clip", flush=True)
    if rank == 0:
        failed = sum(1 for r in rows if r["error"])
        print(f"wrote {out / 'results.csv'} and {out / 'results.png'} ({len(rows)} points, {failed} failed"
              f"{': see the error column' if failed else ''})")
        return 1 if failed else 0  # every point ran; a script still learns that some failed
    return 0


def run_point(point: dict[str, str], job, args: argparse.Namespace, metrics: list[str], rank: int, world: int,
              sync, device: str | None) -> dict[str, Any]:
    """Generate (resuming) and score one point; a failure becomes the row's ``error``."""
    from magnetkit.batch import read_manifest

    row: dict[str, Any] = {**point, "seconds_per_clip": "", "batch_size": "", "clips": 0, "error": ""}
    try:
        result = run_job(job, device, rank, world, sync, log=lambda line: print(f"  {line}", flush=True)
                         if rank == 0 and line.startswith("--batch-size auto") else None)
        entries = read_manifest(job.out)
        times = [float(e.get("seconds_per_clip", math.nan)) for e in entries.values()]
        row["clips"] = len(entries)
        row["seconds_per_clip"] = round(sum(times) / len(times), 4) if times else ""
        row["batch_size"] = ",".join(str(b) for b in sorted({e["batch_size"] for e in entries.values()
                                                              if "batch_size" in e}))
        if rank == 0:
            row.update(score(job.out, args, metrics, reuse=result.generated == 0))
    except Exception as exc:  # noqa: BLE001 -- one point's failure must not stop the sweep
        message = str(exc).splitlines()[0] if str(exc) else ""
        row["error"] = message if isinstance(exc, UsageError) else f"{type(exc).__name__}: {message}"
    return row


def score(folder: Path, args: argparse.Namespace, metrics: list[str], reuse: bool) -> dict[str, Any]:
    """The point's metrics: from its ``scores.json`` when nothing was regenerated and the settings match."""
    import magnetkit

    settings = {"reference": str(Path(args.reference).resolve()), "embedder": args.embedder, "metrics": metrics}
    saved = folder / "scores.json"
    if reuse and saved.is_file():
        data = json.loads(saved.read_text())
        if data.get("settings") == settings:
            return {**data["metrics"], "_metrics": list(data["metrics"])}
    report = magnetkit.evaluate(args.reference, folder, embedder=args.embedder, metrics=metrics, progress=False,
                                cache_dir=folder.parent.parent / "embedding-cache", device=args.device)
    values = {k: float(v) for k, v in report.metrics.items()}
    tmp = saved.with_name(f".scores.json.tmp{os.getpid()}")
    tmp.write_text(json.dumps({"settings": settings, "metrics": values}, indent=1))
    os.replace(tmp, saved)
    return {**values, "_metrics": list(values)}


def sweep_ranks(jobs: list, args: argparse.Namespace, metrics: list[str], out: Path) -> int:
    """Under torchrun: every point's clips shared over the ranks; rank 0 scores."""
    import torch

    from magnetkit.train.distributed import gather_objects, session

    preference = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with session("cuda" if preference.startswith("cuda") else "cpu") as world:
        return sweep(jobs, args, metrics, out, world.rank, world.size, gather_objects, str(world.device))


# ------------------------------------------------------------------------------- results
def write_results(out: Path, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """``results.csv`` (atomically) and ``results.png`` from the rows so far."""
    import csv

    metric_names = list(dict.fromkeys(m for r in rows for m in r.get("_metrics", [])))
    columns = [*keys, *metric_names, "seconds_per_clip", "batch_size", "clips", "error"]
    tmp = out / f".results.csv.tmp{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    os.replace(tmp, out / "results.csv")
    plot(out / "results.png", keys, metric_names, rows)


def plot(path: Path, keys: list[str], metric_names: list[str], rows: list[dict[str, Any]]) -> None:
    """One panel per metric: the first grid key along x, one line per value of the other keys."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = metric_names or ["(no metric: every point failed)"]
    xs = list(dict.fromkeys(r[keys[0]] for r in rows))
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        series.setdefault(", ".join(f"{k}={row[k]}" for k in keys[1:]) or "all", []).append(row)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        for label, members in series.items():
            ys = [next((float(m[name]) for m in members if m[keys[0]] == x and m.get(name, "") != ""), math.nan)
                  for x in xs]
            ax.plot(range(len(xs)), ys, marker="o", label=label)
        ax.set_xticks(range(len(xs)), xs, rotation=20 if max(len(x) for x in xs) > 6 else 0)
        ax.set_xlabel(keys[0])
        ax.set_title(name + (" (lower is better)" if name in ("fad", "kad", "kl") else ""))
        ax.grid(alpha=0.3)
    if len(series) > 1:
        axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)

