"""Batch generation from a prompt file: one clip per prompt, a manifest, resumable, sharded by rank.

Reproducibility contract (what a test checks, and the README states):

- Clip i is sampled with its own random generator seeded ``clip_seed(base, i) = base + i``; no
  other clip's draws touch it. The transformer still runs ``batch_size`` clips per forward.
- A batch holds only prompts of the same condition length (token count), up to B of them in
  file order: the text conditioner pads a batch to its longest prompt and MAGNeT's
  cross-attention (as audiocraft's) has no padding mask, so a padded prompt's clip would change
  with its batchmates. Ranks take whole batches, and a missing clip is regenerated inside its
  original batch, so a clip is the same whatever the number of ranks and however often the run
  was resumed.
- So clip i is a function of (prompt i, base seed, i, settings) up to floating point: batched
  kernels may round a row differently from the same row alone. On the CPU (torch 2.13) the
  default model's logits differ by ~1e-5 between batch sizes 1 and 4, and speccodec's
  Griffin-Lim, run on batched FFTs, can grow its rounding to ~1e-2 of full scale, so files from
  different batch sizes can differ (a sampled token can too); with the transformer and codec run
  row by row they are byte-identical (tests/commands/test_batch.py). The same batch size on the
  same machine and software repeats exactly.

Nothing is lost if a run is killed: each audio file is written to a temporary name and renamed,
and its manifest line is appended (and flushed to disk) only after the file is in place. Each rank
appends to its own part file (safe on shared file systems where concurrent appends are not);
at the end rank 0 merges them into ``manifest.jsonl``, one line per prompt, in prompt order.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from magnetkit.errors import UsageError

MANIFEST = "manifest.jsonl"
PART_GLOB = "manifest.part-*.jsonl"
MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds; clip seeds base + i must stay in range
AUTO = "auto"  # --batch-size auto


# ----------------------------------------------------------------------------- inputs
def clip_seed(base: int, index: int) -> int:
    """The seed of clip ``index``: a function of the base seed and the index only."""
    return base + index


def check_seed(seed: int | None, count: int = 1) -> None:
    """A base seed that keeps every clip seed in [0, 2**63 - 1], or a UsageError saying the range."""
    if seed is not None and not 0 <= seed <= MAX_SEED - max(count - 1, 0):
        raise UsageError(f"--seed must be between 0 and {MAX_SEED - max(count - 1, 0)}"
                         f"{f' for {count} prompts' if count > 1 else ''}, got {seed}")


def read_prompts(path: str | os.PathLike) -> list[str]:
    """One prompt per non-blank line of a UTF-8 text file (surrounding spaces removed)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"prompt file {str(path)!r} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read prompt file {str(path)!r}: {exc.strerror}") from exc
    prompts = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise UsageError(f"prompt file {str(path)!r} line {number} is not valid UTF-8") from exc
        if text:
            prompts.append(text)
    if not prompts:
        raise UsageError(f"prompt file {str(path)!r} holds no prompts (one per line)")
    return prompts


def check_text(text: str, what: str = "prompt text") -> None:
    """Refuse text that came in as bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        raise UsageError(f"a {what} is not valid UTF-8: {text.encode('utf-8', 'replace').decode()[:60]!r}")


def check_out_dir(out: Path) -> None:
    """``out`` is (or can be made) a writable folder; checked before any work."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {str(out)!r} is a file; give a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"-o {str(out)!r}: {str(existing)!r} is a file, so the folder cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"-o {str(out)!r}: {str(existing)!r} is not writable")


def make_out_dir(out: Path, what: str = "-o") -> None:
    """Create the folder and prove it writable (a real file: root passes every ``os.access``)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{what} {str(out)!r} cannot be written: {exc.strerror or exc}") from exc


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe short form of a text (generated files are named after their prompts)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "audio"


def clip_name(index: int, text: str, fmt: str) -> str:
    """The file name of clip ``index``."""
    return f"{index:05d}_{slug(text)}.{fmt}"


# --------------------------------------------------------------------------- the manifest
def read_manifest(out: Path) -> dict[int, dict[str, Any]]:
    """Entries of ``manifest.jsonl`` and any part files a killed run left, by clip index (last wins)."""
    entries: dict[int, dict[str, Any]] = {}
    for path in [out / MANIFEST, *sorted(out.glob(PART_GLOB))]:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            try:
                entry = json.loads(line)
                entries[int(entry["index"])] = entry
            except (ValueError, KeyError, TypeError) as exc:
                if path.name == MANIFEST and line.strip():  # written atomically: a bad line is an edit
                    raise UsageError(f"{str(path)!r} line {number} is not a manifest entry; "
                                     "fix or remove it, or regenerate with --overwrite") from exc
                # a part-file line cut short by a kill: its clip is simply regenerated
    return entries


def merge_manifest(out: Path) -> int:
    """Fold the part files into ``manifest.jsonl`` (atomically), one line per clip in index order."""
    entries = read_manifest(out)
    tmp = out / f".{MANIFEST}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for index in sorted(entries):
            f.write(json.dumps(entries[index], ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / MANIFEST)
    for part in out.glob(PART_GLOB):
        part.unlink()
    return len(entries)


def append_line(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line and push it to disk (after the clip's file is in place)."""
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():  # a line cut short by a kill must not swallow this one
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def fingerprint(settings: dict[str, Any]) -> str:
    """A short hash of the settings that decide a clip's content."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ the job
@dataclass
class BatchJob:
    """Everything that decides a batch run's clips, and where they go."""

    prompts: list[str]
    out: Path
    source: str | None = None
    overrides: list[str] = field(default_factory=list)
    seed: int | None = None
    batch_size: int | str = 1  # or AUTO: measured by `magnetkit.batching.pick_batch_size` once the model loads
    negative: str | None = None
    fmt: str = "wav"
    strategy: str = "loudness"
    overwrite: bool = False
    memory_budget_gib: float | None = None  # with AUTO; None = `default_memory_budget_gib`

    def check(self) -> None:
        """Every input and output checked before any model loads."""
        if self.batch_size != AUTO and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise UsageError(f"--batch-size must be at least 1 or {AUTO!r}, got {self.batch_size!r}")
        if self.memory_budget_gib is not None:
            if self.batch_size != AUTO:
                raise UsageError("--memory-budget goes with --batch-size auto")
            if not self.memory_budget_gib > 0 or self.memory_budget_gib == float("inf"):
                raise UsageError(f"--memory-budget must be a positive number of GiB, got {self.memory_budget_gib}")
        check_seed(self.seed, len(self.prompts))
        for text in self.prompts:
            check_text(text)
        check_out_dir(self.out)



def plan_batches(lengths: Sequence[int], batch_size: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """This rank's share of the batches: prompts of one condition length, in file order, B at a time.

    Batching only prompts of equal length means no row is padded for its batchmates (the
    transformer's cross-attention has no padding mask), so a clip does not depend on the batch
    size. Batches are ordered by their first prompt; batch j goes to rank j mod world.
    """
    groups: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        groups.setdefault(int(length), []).append(index)
    batches = [g[k:k + batch_size] for g in groups.values() for k in range(0, len(g), batch_size)]
    return sorted(batches, key=lambda b: b[0])[rank::world]


def condition_lengths(pipeline: Any, texts: Sequence[str], chunk: int = 64) -> list[int]:
    """Each text's condition length (real tokens, from the conditioner's mask)."""
    import torch

    out: list[int] = []
    with torch.no_grad():
        for k in range(0, len(texts), chunk):
            mask = pipeline.conditioner(list(texts[k:k + chunk])).mask
            out += [int(n) for n in mask.reshape(mask.shape[0], -1).sum(-1).tolist()]
    return out


@dataclass
class BatchResult:
    """What a batch run did on this rank."""

    generated: int  # by this rank
    skipped: int  # clips already written when the run started (all ranks)
    seconds: float  # generation time of the clips generated here
    total: int  # clips in the merged manifest (rank 0) or prompts


def resolve_base_seed(job: BatchJob, existing: dict[int, dict[str, Any]]) -> int:
    """The given seed, the one an earlier run recorded, or a fresh random one."""
    recorded = {e.get("base_seed") for e in existing.values()}
    if job.seed is not None:
        return job.seed
    if len(recorded) == 1 and None not in recorded:
        return int(recorded.pop())
    return random.randrange(2**62)


def todo(job: BatchJob, existing: dict[int, dict[str, Any]], base: int, settings_hash: str) -> set[int]:
    """Indices to generate: those without a matching manifest entry whose file exists.

    An entry for the same index with another text, seed or settings is refused (it would mix
    two runs in one folder) unless ``--overwrite``.
    """
    extra = sorted(i for i in existing if i >= len(job.prompts))
    if extra and not job.overwrite:
        raise UsageError(f"{str(job.out / MANIFEST)!r} holds clip {extra[0]}, beyond the {len(job.prompts)} prompts "
                         "of this file; use another -o folder, or --overwrite to regenerate")
    missing = set()
    for index, text in enumerate(job.prompts):
        entry = existing.get(index)
        if entry is None or job.overwrite:
            missing.add(index)
            continue
        clash = [what for what, ours, theirs in (("text", text, entry.get("text")),
                                                 ("seed", clip_seed(base, index), entry.get("seed")),
                                                 ("settings", settings_hash, entry.get("settings_hash")))
                 if ours != theirs]
        if clash:
            raise UsageError(f"{str(job.out / MANIFEST)!r} already holds clip {index} with another "
                             f"{' and '.join(clash)}; use another -o folder, or --overwrite to regenerate")
        if not (job.out / entry["file"]).is_file():
            missing.add(index)
    return missing


# ------------------------------------------------------------------------- generation
class RowSeededSampler:
    """A sampler wrapper that samples each batch row with that row's own generator.

    The engine passes one generator for the whole batch; drawing row by row from per-clip
    generators makes a clip's random numbers independent of its batchmates. It reports
    ``positionwise = False`` so the engine hands it whole rows [B, T, card], not positions of
    several rows merged.
    """

    positionwise = False

    def __init__(self, inner: Any, generators: Sequence[Any]):
        self.inner = inner
        self.generators = list(generators)
        self._takes_stage = "stage" in inspect.signature(inner.__call__).parameters

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, logits: Any, step: int, num_steps: int, generator: Any = None,
                 stage: int | None = None) -> tuple[Any, Any]:
        import torch

        if logits.shape[0] != len(self.generators):
            raise UsageError(f"internal: {logits.shape[0]} rows for {len(self.generators)} clip generators")
        extra = {"stage": stage} if self._takes_stage else {}
        rows = [self.inner(logits[r:r + 1], step, num_steps, generator=g, **extra)
                for r, g in enumerate(self.generators)]
        return torch.cat([t for t, _ in rows]), torch.cat([p for _, p in rows])


def write_batch(job: BatchJob, rank: int, batch: list[int], missing: set[int], result: Any, base: int,
                settings: dict[str, Any]) -> int:
    """Write a batch's missing clips (atomically), each followed by its manifest line; how many."""
    from magnetkit.audio import write_audio

    written = 0
    for row, index in enumerate(batch):
        if index not in missing:  # its batchmate was missing; this clip is already on disk
            continue
        name = clip_name(index, job.prompts[index], job.fmt)
        tmp = job.out / f".{name}.tmp{os.getpid()}.{job.fmt}"
        write_audio(tmp, result.audio[row], result.sample_rate, strategy=job.strategy)
        os.replace(tmp, job.out / name)
        append_line(job.out / f"manifest.part-{rank}.jsonl", {
            "index": index, "text": job.prompts[index], "seed": clip_seed(base, index), "file": name,
            "source": job.source or "default-model", "overrides": job.overrides, "base_seed": base,
            "batch_size": job.batch_size, "duration": round(result.audio.shape[-1] / result.sample_rate, 4),
            "seconds_per_clip": round(result.seconds / len(batch), 4), "settings_hash": fingerprint(settings),
            "settings": settings})
        written += 1
    return written


def clear(job: BatchJob, existing: dict[int, dict[str, Any]]) -> None:
    """Remove temporaries a killed run left; with ``overwrite``, also the earlier run's clips and manifest.

    The old clips go too, so a folder regenerated from a shorter prompt file holds no stray audio
    that an evaluation of the folder would count.
    """
    for stale in job.out.glob(f".*.tmp*.{job.fmt}"):
        stale.unlink()
    if not job.overwrite:
        return
    for entry in existing.values():
        path = job.out / str(entry.get("file", ""))
        if path.is_file() and path.parent == job.out:
            path.unlink()
    for path in [job.out / MANIFEST, *job.out.glob(PART_GLOB)]:
        path.unlink(missing_ok=True)


def generate_rows(pipeline: Any, texts: list[str], seeds: list[int], negative: str | None) -> Any:
    """One batch through the pipeline, each row with its own seeded generator; a `Generation`."""
    import torch

    generators = [torch.Generator(pipeline.device).manual_seed(s) for s in seeds]
    original = pipeline.sampler
    pipeline.sampler = RowSeededSampler(original, generators)
    try:
        return pipeline.generate(texts, negative=negative, seed=0, progress=False)
    finally:
        pipeline.sampler = original


def resolved_settings(recipe: Any, job: BatchJob) -> dict[str, Any]:
    """The settings recorded with each clip (the resolved recipe, without display-only keys)."""
    recipe = recipe.to_dict()
    recipe.get("generation", {}).pop("progress", None)
    return {"recipe": recipe, "negative": job.negative, "format": job.fmt, "strategy": job.strategy}


def auto_batch_size(pipeline: Any, job: BatchJob, log: Callable[[str], None]) -> int:
    """``--batch-size auto``: the most clips per second within the job's memory budget (measured)."""
    from magnetkit.batching import default_memory_budget_gib, pick_batch_size

    budget = job.memory_budget_gib or default_memory_budget_gib(pipeline.device)
    size = pick_batch_size(pipeline, pipeline.recipe.generation.duration, budget, max_batch=len(job.prompts))
    log(f"--batch-size auto: {size} (the most clips per second measured within {budget:.1f} GiB)")
    return size


def run_batch(job: BatchJob, load_pipeline: Callable[[], Any], *, recipe: Any = None, rank: int = 0, world: int = 1,
              sync: Callable[[Any], list[Any]] | None = None, log: Callable[[str], None] = print) -> BatchResult:
    """Generate this rank's missing clips and (rank 0) merge the manifest.

    Args:
        job: the prompts, settings and output folder (already checked).
        load_pipeline: builds the pipeline (its resolved recipe is recorded with every clip).
        recipe: the validated recipe ``load_pipeline`` builds, if known: a finished run then
            builds nothing.
        rank, world: this process's place among ``world`` processes.
        sync: all-gather of a picklable object over ranks (None for one process); also a barrier.
        log: where progress lines go.
    Returns:
        A `BatchResult`.
    Raises:
        UsageError: the folder holds another run's clips (without ``overwrite``).
    """
    gather = sync or (lambda obj: [obj])
    job.out.mkdir(parents=True, exist_ok=True)
    existing = read_manifest(job.out)
    if rank == 0:  # no rank writes before the gather below
        clear(job, existing)
    existing = {} if job.overwrite else existing
    base = gather(resolve_base_seed(job, existing))[0]  # rank 0's choice when unseeded
    pipeline = None if recipe is not None else load_pipeline()
    settings = resolved_settings(recipe if recipe is not None else pipeline.recipe, job)
    missing = todo(job, existing, base, fingerprint(settings))  # the same on every rank
    if missing and pipeline is None:
        pipeline = load_pipeline()
    if missing and job.batch_size == AUTO:  # rank 0 measures; every rank plans the same batches with its choice
        job.batch_size = gather(auto_batch_size(pipeline, job, log) if rank == 0 else None)[0]
    batches = plan_batches(condition_lengths(pipeline, job.prompts), job.batch_size, rank, world) if missing else []
    gather(None)  # every rank has read the manifest before any rank writes a part file
    generated, seconds = 0, 0.0
    mine = [b for b in batches if missing.intersection(b)]
    for number, batch in enumerate(mine, start=1):
        result = generate_rows(pipeline, [job.prompts[i] for i in batch], [clip_seed(base, i) for i in batch],
                               job.negative)
        seconds += result.seconds
        generated += write_batch(job, rank, batch, missing, result, base, settings)
        log(f"[rank {rank}/{world}] batch {number}/{len(mine)}: {len(batch)} clips in {result.seconds:.2f} s")
    gather(None)  # every part file is complete
    total = merge_manifest(job.out) if rank == 0 else len(job.prompts)
    gather(None)  # rank 0 merged before anyone returns
    return BatchResult(generated, len(job.prompts) - len(missing), seconds, total)
