"""``magnetkit generate``: text (or an audio prompt) to audio files."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import time
from pathlib import Path

from magnetkit.batch import AUTO, slug
from magnetkit.errors import UsageError

EXAMPLES = """examples:
  magnetkit generate "a fast high square-wave arpeggio"            (the embedded default model)
  magnetkit generate magnet-small-10secs "happy rock" "sad piano" -o out/
  magnetkit generate facebook/magnet-small-10secs "lofi beat" generation.duration=5 --seed 1
  magnetkit generate path/to/checkpoint "calm piano" --prompt-audio intro.wav generation.duration=8
  magnetkit generate magnet-small-10secs "jazz" --negative "drums" sampler.temperature=2.5 --codes-out codes.npy
  magnetkit generate magnet-small-10secs-hybrid-musicgen "lofi beat" hybrid.prefix_seconds=1   (Hybrid-MAGNeT)
  magnetkit generate --prompts prompts.txt -o clips/ --seed 0 --batch-size 8           (batch: clips/manifest.jsonl)
  torchrun --nproc_per_node 4 --no-python magnetkit generate --prompts prompts.txt -o clips/ --seed 0
"""

# ``section=...`` or ``section.key...=...`` with a section of the recipe schema is an override;
# ``word.word...=...``: meant as an override, whatever the first word (a typo is an error, not a text).
_DOTTED = re.compile(r"^([A-Za-z_]\w*)(\.\w+)+=")


class _IntermixedParser(argparse.ArgumentParser):
    """Positionals anywhere among the options: ``generate "x" -o out --seed 1 generation.duration=1``."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inside:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``generate``."""
    p = subparsers.add_parser("generate", help="generate audio from text", epilog=EXAMPLES,
                              description="Generate one audio file per text, or per line of a --prompts file. "
                                          "SOURCE is a recipe, a magnetkit or audiocraft checkpoint folder, or a "
                                          "hub id; without it the embedded default model is used.",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.__class__ = _IntermixedParser  # add_parser builds the class its action was given; only this one intermixes
    p.add_argument("args", nargs="*", metavar="[SOURCE] TEXT... [key=value...]",
                   help="optional source, then texts (none with --prompts), then recipe overrides")
    p.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    p.add_argument("--prompts", metavar="FILE", help="batch mode: one prompt per line; writes OUT/manifest.jsonl, "
                                                     "resumable, sharded over torchrun ranks")
    add_batch_size_options(p, "with --prompts: clips per forward (default 1); auto measures the batch with the "
                              "most clips per second within --memory-budget")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (refused otherwise)")
    p.add_argument("--model", dest="source", help="the source, when it could be mistaken for a text")
    p.add_argument("--codes-out", help="also save the codes [B, K, T] to this .npy file")
    p.add_argument("--seed", type=int, help="seed for reproducible sampling (with --prompts: clip i uses seed+i)")
    p.add_argument("--negative", help="a text to guide away from (negative prompt)")
    p.add_argument("--prompt-audio", help="an audio file to continue")
    p.add_argument("--format", choices=["wav", "flac"], default="wav", help="audio file format")
    p.add_argument("--strategy", choices=["loudness", "peak", "rms", "clip"], default="loudness",
                   help="output normalisation (as audiocraft's audio_write)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available; under torchrun "
                                    "cuda:LOCAL_RANK)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's; 1 is often fastest for "
                                               "small models on a busy machine)")
    p.set_defaults(func=run)


def split_args(args: list[str], source: str | None, batch: bool = False) -> tuple[str | None, list[str], list[str]]:
    """Positional arguments -> (source, texts, overrides); a misspelt section is an error.

    With ``batch`` (``--prompts``, ``sweep``) no texts are expected: a lone positional is the source.
    """
    known = sections()
    overrides, rest = [], []
    for arg in args:
        if (head := re.match(r"^(\w+)(\.\w+)*=", arg)) and head.group(1) in known:
            overrides.append(arg)
        elif (dotted := _DOTTED.match(arg)) and not any(c.isspace() for c in arg.partition("=")[0]):
            raise UsageError(unknown_section(dotted.group(1), arg))
        else:
            rest.append(arg)
    if batch and source is None and len(rest) == 1:
        source, rest = rest[0], []
    elif source is None and rest and looks_like_source(rest[0]) and len(rest) > 1:
        source, rest = rest[0], rest[1:]
    elif source is None and len(rest) == 1 and looks_like_source(rest[0]) and not any(c.isspace() for c in rest[0]):
        raise UsageError(f"{rest[0]!r} looks like a model source but no text follows it; "
                         "give a text (quote it), or --model for the source")
    return source, rest, overrides


def sections() -> list[str]:
    """The recipe's top-level sections (the schema's fields: plugins' branches add some)."""
    from magnetkit.recipe import Recipe

    return list(Recipe.model_fields)


def unknown_section(section: str, arg: str) -> str:
    """The message for an override whose section does not exist, with a did-you-mean."""
    known = sections()
    close = difflib.get_close_matches(section, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (sections: {', '.join(known)})"
    return f"{arg!r}: {section!r} is not a recipe section{hint} (a text with a space before '=' stays a text)"


def looks_like_source(arg: str) -> bool:
    """A path, a shipped recipe name or a hub id (owner/name) — not a text."""
    from magnetkit.recipe import recipe_dirs

    try:
        if Path(arg).expanduser().exists():
            return True
        if any((d / f"{arg}.yaml").is_file() for d in recipe_dirs()):
            return True
    except (OSError, ValueError):  # too long for a file name, or a NUL byte: a text
        return False
    return re.fullmatch(r"[\w.-]+/[\w.-]+", arg) is not None


# ----------------------------------------------------------------------------- checks
def check_options(args: argparse.Namespace) -> None:
    """Options that are wrong whatever the model."""
    from magnetkit.batch import check_seed, check_text

    if args.negative is not None and not args.negative.strip():
        raise UsageError("--negative is empty; give a text to guide away from, or leave the option out")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    check_seed(args.seed)
    for text in [*args.args, args.negative or "", args.source or "", args.prompts or ""]:
        check_text(text, "command-line argument")
    if args.device is not None and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {args.device}: no CUDA device is available to this torch build; "
                             "use --device cpu")


def check_codes_out(path: str, overwrite: bool) -> None:
    """``--codes-out`` ends in .npy and can be written (checked before any work)."""
    from magnetkit.batch import check_out_dir

    target = Path(path)
    if target.suffix != ".npy":
        raise UsageError(f"--codes-out must end in .npy (numpy's file format), got {path!r}")
    if target.is_dir():
        raise UsageError(f"--codes-out {path!r} is a folder; give a .npy file name")
    if target.exists() and not overwrite:
        raise UsageError(f"--codes-out {path!r} already exists; pass --overwrite to replace it")
    try:
        check_out_dir(target.parent)
    except UsageError as exc:
        raise UsageError(f"--codes-out {path!r}: {str(exc).split(': ', 1)[-1]}") from exc


def output_paths(out: Path, texts: list[str], fmt: str, overwrite: bool) -> list[Path]:
    """The audio file of each text; an existing one is refused without ``--overwrite``."""
    from magnetkit.batch import check_out_dir

    check_out_dir(out)
    paths = [out / f"{i:02d}_{slug(text)}.{fmt}" for i, text in enumerate(texts)]
    for path in paths:
        if path.is_dir() or (path.exists() and not overwrite):
            raise UsageError(f"{str(path)!r} already exists; pass --overwrite to replace it, or another -o folder")
    return paths


def add_batch_size_options(p: argparse.ArgumentParser, batch_help: str) -> None:
    """``--batch-size N|auto`` and ``--memory-budget GIB`` (shared by generate and sweep)."""
    p.add_argument("--batch-size", default="1", metavar="N|auto", help=batch_help)
    p.add_argument("--memory-budget", type=float, metavar="GIB",
                   help="with --batch-size auto: memory generation may add, in GiB (default: half of what the "
                        "device has free)")


# -------------------------------------------------------------------------------- run
def batch_size_arg(text: str) -> int | str:
    """``--batch-size``: a whole number or ``auto``."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--batch-size: expected a whole number or auto, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Load, generate, write files; print elapsed time and real-time factor."""
    from magnetkit.batch import make_out_dir

    check_options(args)
    args.batch_size = batch_size_arg(args.batch_size)
    source, texts, overrides = split_args(args.args, args.source, batch=args.prompts is not None)
    if args.prompts is not None:
        return run_prompts(args, source, texts, overrides)
    if args.batch_size != 1:
        raise UsageError("--batch-size goes with --prompts (texts on the command line form one batch)")
    if args.memory_budget is not None:
        raise UsageError("--memory-budget goes with --prompts --batch-size auto")
    if not texts:
        raise UsageError("give at least one text to generate from (or --prompts FILE)")
    paths = output_paths(Path(args.out), texts, args.format, args.overwrite)
    if args.codes_out:
        check_codes_out(args.codes_out, args.overwrite)
    if any(not text.strip() for text in texts):
        raise UsageError("a text prompt is empty; give a description")
    prompt = read_prompt_audio(args.prompt_audio) if args.prompt_audio else None
    make_out_dir(Path(args.out))
    if args.codes_out:
        make_out_dir(Path(args.codes_out).parent, "--codes-out")
    set_threads(args.threads)

    from magnetkit.loading import load

    started = time.perf_counter()
    pipeline = load(source, overrides, device=args.device)
    loaded = time.perf_counter() - started
    result = generate_texts(pipeline, texts, prompt, args)
    for path, audio in zip(paths, result.audio):
        print(f"wrote {write_file(path, audio, result.sample_rate, args.strategy)}")
    if args.codes_out:
        import numpy as np

        np.save(args.codes_out, result.codes.numpy())
        print(f"wrote {args.codes_out} (codes {list(result.codes.shape)})")
    seconds = result.audio.shape[-1] / result.sample_rate
    print(f"generated {len(texts)} x {seconds:.2f} s in {result.seconds:.2f} s "
          f"(real-time factor {result.real_time_factor:.3f}; loading took {loaded:.2f} s)")
    return 0


def generate_texts(pipeline, texts: list[str], prompt, args: argparse.Namespace):
    """The `Generation` of the command-line texts: plain, continuing ``prompt`` or Hybrid-MAGNeT."""
    kwargs = dict(negative=args.negative, seed=args.seed, progress=False if args.quiet else None)
    if prompt is not None:
        if pipeline.recipe.hybrid is not None:
            raise UsageError("--prompt-audio continues audio with MAGNeT alone; it cannot be combined with a "
                             "recipe's hybrid section")
        wav, sr = prompt
        if wav.shape[-1] * pipeline.frame_rate < sr:
            raise UsageError(f"--prompt-audio {args.prompt_audio!r} is {wav.shape[-1]} samples "
                             f"({wav.shape[-1] / sr * 1000:.1f} ms); it must hold at least one codec frame "
                             f"({1000 / pipeline.frame_rate:.1f} ms)")
        return pipeline.continue_audio(wav[None].expand(len(texts), -1, -1), sr, texts, **kwargs)
    if pipeline.recipe.hybrid is not None:  # Hybrid-MAGNeT: an autoregressive prefix, then parallel
        from magnetkit.hybrid import HybridGenerator

        result = HybridGenerator.from_pipeline(pipeline).generate(texts, **kwargs)
        print(f"{result.prefix_frames} frames decoded autoregressively in {result.autoregressive_seconds:.2f} s")
        return result
    return pipeline.generate(texts, **kwargs)


def read_prompt_audio(path: str):
    """The ``--prompt-audio`` file as ([C, S], sample rate), read before any model loads."""
    from magnetkit.audio import read_audio

    return read_audio(path)


def write_file(path: Path, audio, sample_rate: int, strategy: str) -> Path:
    """Write one clip under a temporary name, then rename: never a half-written file at ``path``."""
    from magnetkit.audio import write_audio

    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    write_audio(tmp, audio, sample_rate, strategy=strategy)
    os.replace(tmp, path)
    return path


def set_threads(threads: int | None) -> None:
    """``--threads``: torch's intra-op thread count."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


# ------------------------------------------------------------------------- batch mode
def run_prompts(args: argparse.Namespace, source: str | None, texts: list[str], overrides: list[str]) -> int:
    """``--prompts FILE``: batch generation into ``-o DIR`` with a manifest, resumable, one share per rank."""
    from magnetkit.batch import BatchJob, read_prompts

    if texts:
        raise UsageError(f"give texts on the command line or --prompts FILE, not both (got {texts[0]!r})")
    for option in ("codes_out", "prompt_audio"):
        if getattr(args, option):
            raise UsageError(f"--{option.replace('_', '-')} cannot be combined with --prompts")
    job = BatchJob(read_prompts(args.prompts), Path(args.out), source=source, overrides=overrides, seed=args.seed,
                   batch_size=args.batch_size, negative=args.negative, fmt=args.format, strategy=args.strategy,
                   overwrite=args.overwrite, memory_budget_gib=args.memory_budget)
    job.check()
    set_threads(args.threads)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # launched by torchrun
        return run_ranks(job, args.device)
    return report(job, run_job(job, args.device), 0)


def run_job(job, device: str | None, rank: int = 0, world: int = 1, sync=None, log=print):
    """Run (this rank's share of) a batch job on ``device``; the model is built only if clips are missing."""
    from magnetkit.batch import make_out_dir, run_batch
    from magnetkit.loading import build_pipeline, default_model_path, resolve_source
    from magnetkit.recipe import apply_overrides, validate_recipe

    source = str(job.source if job.source is not None else default_model_path())
    data, weights = resolve_source(source)  # as `magnetkit.load` does, split so a finished run stops here
    recipe = validate_recipe(apply_overrides(data, job.overrides), source=source)
    if recipe.hybrid is not None:
        raise UsageError("--prompts does not run Hybrid-MAGNeT recipes yet; generate their texts directly")
    make_out_dir(job.out)  # after the recipe is known good, before the model is built
    return run_batch(job, lambda: build_pipeline(recipe, weights, device=device), recipe=recipe, rank=rank,
                     world=world, sync=sync, log=log)


def run_ranks(job, device: str | None) -> int:
    """One torchrun rank: join the process group (gloo on CPU, NCCL + one GPU per rank), run its share."""
    import torch

    from magnetkit.train.distributed import gather_objects, session

    preference = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with session("cuda" if preference.startswith("cuda") else "cpu") as world:
        result = run_job(job, str(world.device), world.rank, world.size, sync=gather_objects)
        return report(job, result, world.rank)


def report(job, result, rank: int) -> int:
    """The closing line (rank 0 only)."""
    if rank == 0:
        print(f"{result.total} clips in {job.out / 'manifest.jsonl'} ({result.skipped} were already written; "
              f"this process generated {result.generated} in {result.seconds:.2f} s)")
    return 0

