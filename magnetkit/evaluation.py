"""`evaluate`: score a folder of generated audio against a folder of reference audio.

Files are read, converted to each embedder's rate and channels (`magnetkit.audio`, soxr),
embedded in batches and compared with the metrics of `magnetkit.metrics`. Reference
embeddings are cached per file, keyed by the file's bytes and the embedder's settings, so a
second evaluation against the same reference set embeds only the generated clips.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from magnetkit.audio import read_audio
from magnetkit.errors import AudioError, MagnetkitError, UsageError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
METRICS = ("fad", "kad", "clap", "kl")
MANIFEST = "manifest.jsonl"
_CACHE_FORMAT = 1  # bump when what a cached file holds changes


# ------------------------------------------------------------------------------ the report
@dataclass
class EvalReport:
    """What `evaluate` measured: ``to_dict()`` is the content of ``report.json``."""

    embedder: str
    metrics: dict[str, float]
    n_reference: int  # clips embedded (skipped ones excluded)
    n_generated: int
    skipped: int = 0  # unreadable files, both sets together
    skipped_files: list[dict[str, str]] = field(default_factory=list)  # {"set", "file", "error"}
    n_reference_vectors: int = 0
    n_generated_vectors: int = 0
    embedder_params: dict[str, Any] = field(default_factory=dict)
    per_clip: list[dict[str, Any]] = field(default_factory=list)  # one row per generated clip

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data (without the per-clip rows)."""
        return {"embedder": self.embedder, "embedder_params": self.embedder_params, "metrics": dict(self.metrics),
                "n_reference": self.n_reference, "n_generated": self.n_generated,
                "n_reference_vectors": self.n_reference_vectors, "n_generated_vectors": self.n_generated_vectors,
                "skipped": self.skipped, "skipped_files": list(self.skipped_files)}


# --------------------------------------------------------------------------------- inputs
def find_audio(folder: str | os.PathLike, what: str) -> list[Path]:
    """Audio files (wav, flac, ogg, mp3) under ``folder``, recursively, sorted; at least one.

    Raises:
        UsageError: the folder does not exist or holds no audio file.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise UsageError(f"{what} folder {str(root)!r} does not exist")
    if root.is_file():
        return [root] if root.suffix.lower() in AUDIO_SUFFIXES else _no_audio(root, what)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return files or _no_audio(root, what)


def _no_audio(root: Path, what: str) -> list[Path]:
    raise UsageError(f"{what} {str(root)!r} holds no audio files ({', '.join(s[1:] for s in AUDIO_SUFFIXES)})")


def read_prompts(generated: Path, files: Sequence[Path], prompts: str | os.PathLike | Sequence[str] | Mapping[str, str] | None
                 ) -> dict[Path, str]:
    """The prompt of each generated file.

    ``prompts`` is a text file (one prompt per line, matched to the generated files in sorted
    path order), a list (same order) or a mapping of path relative to GENERATED -> text; None
    reads ``GENERATED/manifest.jsonl`` (objects with ``text`` and ``file``, relative paths).

    Raises:
        UsageError: no prompts are found, or their count does not match the files.
    """
    if prompts is None:
        manifest = generated / MANIFEST
        if not manifest.is_file():
            raise UsageError(f"the clap metric needs prompts: pass --prompts FILE or put a {MANIFEST} "
                             f"(objects with 'text' and 'file') in {str(generated)!r}")
        return _read_manifest(generated, manifest, files)
    if isinstance(prompts, Mapping):
        by_rel = {str(Path(k)): v for k, v in prompts.items()}
        return {f: by_rel[_rel(f, generated)] for f in files if _rel(f, generated) in by_rel}
    if isinstance(prompts, (str, os.PathLike)):
        path = Path(prompts).expanduser()
        if not path.is_file():
            raise UsageError(f"prompts file {str(path)!r} does not exist")
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        lines = [str(p) for p in prompts]
    if len(lines) != len(files):
        raise UsageError(f"{len(lines)} prompts for {len(files)} generated files: give one prompt per file "
                         f"(in sorted path order), or use a {MANIFEST}")
    return dict(zip(files, lines))


def _read_manifest(root: Path, manifest: Path, files: Sequence[Path]) -> dict[Path, str]:
    wanted = {_rel(f, root): f for f in files}
    out: dict[Path, str] = {}
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text, name = item["text"], item["file"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{manifest}:{number}: expected a JSON object with 'text' and 'file'") from exc
        rel = str(Path(name))
        if rel in wanted and isinstance(text, str):
            out[wanted[rel]] = text
    if not out:
        raise UsageError(f"{manifest} names none of the audio files in {str(root)!r}")
    return out


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if root.is_dir() else path.name


# ---------------------------------------------------------------------------------- cache
class EmbeddingCache:
    """Per-file embeddings on disk: ``ROOT/<embedder key>/<sha256 of the file>.npy``."""

    def __init__(self, root: str | os.PathLike, embedder_key: str):
        self.folder = Path(root).expanduser() / hashlib.sha256(f"{_CACHE_FORMAT}|{embedder_key}".encode()).hexdigest()[:24]

    def path(self, digest: str) -> Path:
        """Where a file with this content hash is cached."""
        return self.folder / f"{digest}.npy"

    def load(self, digest: str) -> np.ndarray | None:
        """The cached vectors, or None (missing or unreadable entries are recomputed)."""
        path = self.path(digest)
        try:
            return np.load(path, allow_pickle=False) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def save(self, digest: str, vectors: np.ndarray) -> None:
        """Write atomically: a reader never sees half an entry."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as handle:
            np.save(handle, vectors, allow_pickle=False)
        os.replace(handle.name, self.path(digest))


def default_cache_dir() -> Path:
    """``$MAGNETKIT_CACHE/embeddings``, else ``$XDG_CACHE_HOME/magnetkit/embeddings`` (~/.cache)."""
    base = os.environ.get("MAGNETKIT_CACHE")
    if base:
        return Path(base).expanduser() / "embeddings"
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "magnetkit" / "embeddings"


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------ embedding
@dataclass
class EmbeddedSet:
    """Vectors of each readable file of one set, in file order, and the files that were skipped."""

    vectors: dict[Path, np.ndarray]
    skipped: list[dict[str, str]]

    def stacked(self) -> np.ndarray:
        """All vectors ``[n, D]`` in file order (float32)."""
        return np.concatenate(list(self.vectors.values()), axis=0)


def embed_files(embedder: Any, files: Sequence[Path], *, what: str, batch_size: int = 8,
                cache: EmbeddingCache | None = None, device: torch.device | str | None = None,
                progress: bool = True) -> EmbeddedSet:
    """Embed audio files in batches; unreadable files are skipped and listed, never fatal."""
    from tqdm import tqdm

    vectors: dict[Path, np.ndarray] = {}
    skipped: list[dict[str, str]] = []
    pending: list[tuple[Path, str | None, torch.Tensor]] = []
    bar = tqdm(total=len(files), desc=f"embedding {what}", unit="file", disable=not progress, leave=False)

    def flush() -> None:
        if not pending:
            return
        for (path, digest, _), vecs in zip(pending, _embed_batch(embedder, [w for *_, w in pending], device)):
            vectors[path] = vecs
            if cache is not None and digest is not None:
                cache.save(digest, vecs)
        bar.update(len(pending))
        pending.clear()

    for path in files:
        digest = file_digest(path) if cache is not None else None
        cached = cache.load(digest) if cache is not None else None
        if cached is not None:
            vectors[path] = cached
            bar.update(1)
            continue
        try:
            wav, _ = read_audio(path, sample_rate=embedder.sample_rate, channels=embedder.channels)
        except AudioError as exc:
            skipped.append({"set": what, "file": str(path), "error": str(exc)})
            bar.update(1)
            continue
        pending.append((path, digest, wav))
        if len(pending) >= batch_size:
            flush()
    flush()
    bar.close()
    # keep file order for stacking (cached and embedded files interleave above)
    return EmbeddedSet({p: vectors[p] for p in files if p in vectors}, skipped)


def _embed_batch(embedder: Any, wavs: list[torch.Tensor], device: torch.device | str | None) -> list[np.ndarray]:
    lengths = [w.shape[-1] for w in wavs]
    batch = torch.zeros(len(wavs), wavs[0].shape[0], max(lengths))
    for i, w in enumerate(wavs):
        batch[i, :, :w.shape[-1]] = w
    if device is not None:
        batch = batch.to(device)
    with torch.inference_mode():
        out = embedder.embed_audio(batch, lengths)
    return [np.ascontiguousarray(v.detach().to("cpu", torch.float32).numpy()) for v in out]


# ------------------------------------------------------------------------------- evaluate
def evaluate(reference: str | os.PathLike, generated: str | os.PathLike, *, embedder: str = "mel",
             embedder_params: Mapping[str, Any] | None = None, metrics: Iterable[str] = ("fad", "kad"),
             prompts: str | os.PathLike | Sequence[str] | Mapping[str, str] | None = None,
             cache_dir: str | os.PathLike | None = None, device: str | torch.device | None = None,
             progress: bool = True, save_embeddings: str | os.PathLike | None = None,
             per_clip: str | os.PathLike | None = None, batch_size: int = 8, use_cache: bool = True,
             clap_params: Mapping[str, Any] | None = None, kl_params: Mapping[str, Any] | None = None) -> EvalReport:
    """Score the audio in ``generated`` against the audio in ``reference``.

    Args:
        reference: folder of reference audio (searched recursively: wav, flac, ogg, mp3).
        generated: folder of generated audio (may hold a ``manifest.jsonl`` with the prompts).
        embedder: registry name of the embedder for fad and kad (`magnetkit components --kind embedder`).
        embedder_params: its parameters (validated by its config model).
        metrics: any of ``fad``, ``kad`` (the embedder's vectors), ``clap`` (CLAP score: the
            ``clap`` embedder, or ``embedder`` if it embeds text), ``kl`` (clips paired by
            relative path; the ``ast`` classifier, or ``embedder`` if it gives label probabilities).
        prompts: for ``clap``: a file with one prompt per line, a list, or a mapping of relative
            path -> text; None reads ``GENERATED/manifest.jsonl``.
        cache_dir: where reference embeddings are cached; None = `default_cache_dir()`.
        device: run the embedders there (e.g. ``"cuda"``); None = CPU.
        progress: show progress bars.
        save_embeddings: folder to write ``reference.npy`` and ``generated.npy`` (the vectors fad and kad used).
        per_clip: CSV path: one row per generated file (its Fréchet distance to the reference
            Gaussian, its CLAP score and KL where measured).
        batch_size: clips per embedder call.
        use_cache: False embeds the reference set afresh and writes no cache.
        clap_params: parameters of the ``clap`` embedder used for the CLAP score.
        kl_params: parameters of the ``ast`` embedder used for KL.

    Returns:
        The `EvalReport`.

    Raises:
        UsageError: bad folders, unknown metrics or embedder, unwritable outputs, too few clips.
        CheckpointError: embedder weights that cannot be found (offline: one line saying what to fetch).
    """
    wanted = _check_metrics(metrics)
    ref_root, gen_root = Path(reference).expanduser(), Path(generated).expanduser()
    _check_outputs(save_embeddings, per_clip)
    ref_files, gen_files = find_audio(ref_root, "reference"), find_audio(gen_root, "generated")
    prompt_of = read_prompts(gen_root, gen_files, prompts) if "clap" in wanted else {}
    pairs = _pairs(ref_root, ref_files, gen_root, gen_files) if "kl" in wanted else []
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    cache_root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) if use_cache else None
    options = dict(batch_size=batch_size, device=device, progress=progress)

    main = _build_embedder(embedder, embedder_params, device)
    clap_by_main = "clap" in wanted and hasattr(main, "embed_text")
    kl_by_main = "kl" in wanted and bool(getattr(main, "label_probs", False))
    # embed with the main embedder only what a requested metric uses
    ref = gen = EmbeddedSet({}, [])
    if wanted & {"fad", "kad"} or kl_by_main:
        ref = _embed_set(main, embedder, embedder_params, ref_files, "reference", cache_root, options)
    if wanted & {"fad", "kad"} or kl_by_main or clap_by_main:
        gen = embed_files(main, gen_files, what="generated", **options)
    report = EvalReport(embedder=embedder, metrics={}, n_reference=0, n_generated=0,
                        embedder_params=_params_dict(main, embedder_params))
    passes = [ref, gen]
    rows: dict[Path, dict[str, Any]] = {}
    if wanted & {"fad", "kad"}:
        _require_clips(ref, "reference")
        _require_clips(gen, "generated")
        _distribution_metrics(report, ref, gen, wanted, _rows(rows, gen, gen_root), save_embeddings)
    if "clap" in wanted:
        clap = main if clap_by_main else _build_embedder("clap", clap_params, device)
        clap_gen = gen if clap_by_main else embed_files(clap, gen_files, what="generated (clap)", **options)
        passes.append(clap_gen)
        _clap_metric(report, clap, _require_clips(clap_gen, "generated"), prompt_of, _rows(rows, clap_gen, gen_root))
    if "kl" in wanted:
        classifier = main if kl_by_main else _build_embedder("ast", kl_params, device)
        if kl_by_main:
            ref_c, gen_c = ref, gen
        else:
            ref_c = _embed_set(classifier, "ast", kl_params, [r for r, _ in pairs], "reference (kl)", cache_root, options)
            gen_c = embed_files(classifier, [g for _, g in pairs], what="generated (kl)", **options)
        passes += [ref_c, gen_c]
        _kl_metric(report, pairs, ref_c, gen_c, _rows(rows, gen_c, gen_root))
    _count(report, passes, ref_files, gen_files)
    rows = {p: rows[p] for p in gen_files if p in rows}  # file order
    report.per_clip = list(rows.values())
    if per_clip is not None:
        _write_per_clip(Path(per_clip).expanduser(), report.per_clip)
    return report


def _check_metrics(metrics: Iterable[str]) -> set[str]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise UsageError(f"unknown metric(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"choose from {', '.join(METRICS)}")
    return set(names)


def _check_outputs(save_embeddings: str | os.PathLike | None, per_clip: str | os.PathLike | None) -> None:
    """Fail before any embedding when an output cannot be written."""
    if save_embeddings is not None:
        folder = Path(save_embeddings).expanduser()
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--save-embeddings {str(folder)!r} is a file, not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create folder {str(folder)!r}: {exc.strerror}") from exc
        if not os.access(folder, os.W_OK):
            raise UsageError(f"folder {str(folder)!r} is not writable")
    if per_clip is not None:
        path = Path(per_clip).expanduser()
        if path.is_dir():
            raise UsageError(f"--per-clip {str(path)!r} is a folder, not a CSV file path")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"cannot write {str(path)!r}: folder {str(parent)!r} does not exist or is not writable")


def _build_embedder(name: str, params: Mapping[str, Any] | None, device: str | torch.device | None) -> Any:
    from magnetkit.registry import get_registry

    spec = get_registry().get("embedder", name)
    try:
        config = spec.config.model_validate(dict(params or {}))
    except Exception as exc:  # pydantic ValidationError: one line in recipe terms
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UsageError(f"embedder {name!r}: {problems}") from exc
        raise
    embedder = spec.build(config)
    if device is not None:
        try:
            embedder = embedder.to(device)
        except (RuntimeError, AssertionError) as exc:
            raise UsageError(f"cannot use device {str(device)!r}: {str(exc).splitlines()[0]}") from exc
    return embedder


def _params_dict(embedder: Any, params: Mapping[str, Any] | None) -> dict[str, Any]:
    config = getattr(embedder, "config", None)
    return config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(params or {})


def _embed_set(embedder: Any, name: str, params: Mapping[str, Any] | None, files: Sequence[Path], what: str,
               cache_root: Path | None, options: dict[str, Any]) -> EmbeddedSet:
    cache = None
    if cache_root is not None:
        key = json.dumps({"name": name, "params": _params_dict(embedder, params),
                          "key": getattr(embedder, "cache_key", "")}, sort_keys=True)
        cache = EmbeddingCache(cache_root, key)
    return embed_files(embedder, files, what=what, cache=cache, **options)


def _require_clips(found: EmbeddedSet, what: str) -> EmbeddedSet:
    if not found.vectors:
        raise UsageError(f"no readable {what} audio: all {len(found.skipped)} file(s) were skipped "
                         f"(first: {found.skipped[0]['error'] if found.skipped else '-'})")
    return found


def _rows(rows: dict[Path, dict[str, Any]], found: EmbeddedSet, root: Path) -> dict[Path, dict[str, Any]]:
    """The per-clip rows, with one for each file of ``found``."""
    for path in found.vectors:
        rows.setdefault(path, {"file": _rel(path, root)})
    return rows


def _count(report: EvalReport, passes: list[EmbeddedSet], ref_files: Sequence[Path], gen_files: Sequence[Path]) -> None:
    """Clips read and files skipped, each file counted once however many embedders read it."""
    skipped = {item["file"]: item for found in passes for item in found.skipped}
    report.skipped_files = list(skipped.values())
    report.skipped = len(skipped)
    read = {p for found in passes for p in found.vectors}
    report.n_reference = sum(1 for p in ref_files if p in read)
    report.n_generated = sum(1 for p in gen_files if p in read)


def _distribution_metrics(report: EvalReport, ref: EmbeddedSet, gen: EmbeddedSet, wanted: set[str],
                          rows: dict[Path, dict[str, Any]], save_embeddings: str | os.PathLike | None) -> None:
    from magnetkit import metrics as m

    ref_vecs, gen_vecs = ref.stacked(), gen.stacked()
    report.n_reference_vectors, report.n_generated_vectors = len(ref_vecs), len(gen_vecs)
    if save_embeddings is not None:
        folder = Path(save_embeddings).expanduser()
        np.save(folder / "reference.npy", ref_vecs)
        np.save(folder / "generated.npy", gen_vecs)
    if "fad" in wanted:
        report.metrics["fad"] = m.frechet_distance(ref_vecs, gen_vecs)
    if "kad" in wanted:
        report.metrics["kad"] = m.kernel_audio_distance(ref_vecs, gen_vecs)
    for path, distance in zip(gen.vectors, m.clip_frechet_to_reference(list(gen.vectors.values()), ref_vecs)):
        rows[path]["fd_to_reference"] = distance


def _clap_metric(report: EvalReport, clap: Any, gen: EmbeddedSet, prompt_of: dict[Path, str],
                 rows: dict[Path, dict[str, Any]]) -> None:
    from magnetkit.metrics import cosine_scores

    files = [p for p in gen.vectors if p in prompt_of]
    if not files:
        raise UsageError("the clap metric found no generated clip with a prompt")
    audio = np.stack([gen.vectors[p].mean(axis=0) for p in files])
    with torch.inference_mode():
        text = clap.embed_text([prompt_of[p] for p in files])
    scores = cosine_scores(audio, np.asarray(torch.as_tensor(text).float().cpu()))
    report.metrics["clap"] = float(scores.mean())
    for path, score in zip(files, scores):
        rows[path]["prompt"] = prompt_of[path]
        rows[path]["clap"] = float(score)


def _pairs(ref_root: Path, ref_files: Sequence[Path], gen_root: Path, gen_files: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Reference and generated files with the same relative path (extension ignored), or same manifest text."""
    def stem(path: Path, root: Path) -> str:
        return str(Path(_rel(path, root)).with_suffix(""))

    by_stem = {stem(f, ref_root): f for f in ref_files}
    pairs = [(by_stem[stem(g, gen_root)], g) for g in gen_files if stem(g, gen_root) in by_stem]
    if not pairs and (ref_root / MANIFEST).is_file() and (gen_root / MANIFEST).is_file():
        ref_text = {t: f for f, t in _read_manifest(ref_root, ref_root / MANIFEST, ref_files).items()}
        gen_text = _read_manifest(gen_root, gen_root / MANIFEST, gen_files)
        pairs = [(ref_text[t], g) for g, t in gen_text.items() if t in ref_text]
    if not pairs:
        raise UsageError("the kl metric pairs clips: no generated file has a reference file with the same "
                         f"relative path (or the same prompt in both folders' {MANIFEST})")
    return pairs


def _kl_metric(report: EvalReport, pairs: list[tuple[Path, Path]], ref: EmbeddedSet, gen: EmbeddedSet,
               rows: dict[Path, dict[str, Any]]) -> None:
    from magnetkit.metrics import kl_divergence

    values, weights = [], 0
    for r, g in pairs:
        if r not in ref.vectors or g not in gen.vectors:
            continue  # one side unreadable: skipped and counted already
        # audiocraft compares window by window (10 s segments of the same clip length)
        n = min(len(ref.vectors[r]), len(gen.vectors[g]))
        kl = kl_divergence(ref.vectors[r][:n], gen.vectors[g][:n])
        values.append(kl.sum())
        weights += n
        if g in rows:
            rows[g]["kl"] = float(kl.mean())
    if not weights:
        raise UsageError("the kl metric found no readable pair of clips")
    report.metrics["kl"] = float(np.sum(values) / weights)


def _write_per_clip(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = ["file"] + [c for c in ("fd_to_reference", "clap", "kl", "prompt") if any(c in r for r in rows)]
    try:
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise MagnetkitError(f"cannot write {str(path)!r}: {exc.strerror}") from exc
