"""The training loop: setup, then the steps, then validation and the final model. Read top to bottom.

One optimizer step (paper §3.1, audiocraft's ``MagnetSolver.run_step``): draw the stage, take this
process's rows of the global batch from the token stream, mask them (`objective`), forward in
micro-batches with gradients synchronised on the last, clip, step AdamW and the cosine schedule,
update the EMA. The loss is the cross-entropy summed over the masked tokens and divided by their
number in the whole global batch, so 1 process and N processes take the very same step.

    magnetkit train RECIPE [key=value ...]                                   # one process
    torchrun --nproc-per-node 8 -m magnetkit.cli train RECIPE [key=value ...]   # 8 GPUs
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from magnetkit.checkpoint import save_checkpoint
from magnetkit.errors import MagnetkitError, RecipeError
from magnetkit.hybrid.objective import HybridObjective
from magnetkit.interfaces import MaskingScheduler
from magnetkit.loading import check_model_matches
from magnetkit.recipe import Recipe
from magnetkit.builder import build_codec, build_component
from magnetkit.train import checkpointing as ckpt
from magnetkit.train import safety
from magnetkit.train.build import (
    Exporter,
    MagnetLM,
    build_modules,
    check_tokens_fit,
    exported_recipe,
    load_training_recipe,
    prepare_tokens,
)
from magnetkit.train.cache import TokenSet
from magnetkit.train.config import TrainConfig
from magnetkit.train.data import PROCESS, TrainingStream, describe, generator, valid_batches
from magnetkit.train.distributed import (
    World,
    all_max,
    all_sum,
    any_process,
    barrier,
    full_model_state,
    full_optimizer_state,
    full_tensor,
    gather_objects,
    gradient_sync,
    load_full_state,
    session,
    unsharded,
    unwrap,
    wrap,
)
from magnetkit.train.metrics import MetricLog
from magnetkit.train.objective import MaskedObjective, Objective, StepDraw
from magnetkit.train.optim import EMA, build_lr_schedule, build_optimizer
from magnetkit.train.samples import SAMPLES_DIR, generate_samples, sample_texts

FINAL_MODEL_DIR = "model"
# Steps between checks for a stop signal: a check synchronises every process (and the host with
# the GPU), so not every step, but often enough to stop within a grace period.
STOP_CHECK_EVERY = 5
AUDIOCRAFT_DIR = "audiocraft"


class TrainingInterrupted(MagnetkitError):
    """A stop signal (SIGTERM, Ctrl-C) ended the run after its checkpoint was written."""

    exit_code = 130


@dataclass
class Run:
    """Everything one run holds; the loop's functions read and advance it."""

    recipe: Recipe
    config: TrainConfig
    world: World
    lm: nn.Module  # MagnetLM, wrapped by DDP or FSDP
    optimizer: torch.optim.Optimizer
    lr_schedule: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    autocast: Callable[[], contextlib.AbstractContextManager]
    ema: EMA | None
    scheduler: MaskingScheduler
    objective: Objective
    stream: TrainingStream
    valid: TokenSet | None
    log: MetricLog
    exporter: Exporter
    out_dir: Path
    step: int = 0  # optimizer steps done
    position: int = 0  # rows of the token stream consumed
    start_step: int = 0  # where this invocation started (after a resume: the checkpoint's step)
    saved_step: int = -1
    window: list[dict[str, Any]] = field(default_factory=list)  # step metrics since the last log line
    text_lengths: dict[str | None, int] = field(default_factory=dict)  # condition length of each caption
    codec: Any = None  # built on first use, for samples


# ================================================================================ the run
def train(source: str | os.PathLike, overrides: Iterable[str] = ()) -> Path:
    """Train or fine-tune the model a recipe describes; return the final model folder.

    Resumes from the newest checkpoint in ``train.out_dir`` when there is one.

    Raises:
        RecipeError: an invalid recipe, or one that does not fit its data.
        CheckpointError: starting weights or a checkpoint that do not match the recipe.
        TrainingInterrupted: a stop signal arrived (the run saved a checkpoint first).
    """
    recipe, weights = load_training_recipe(source, overrides)
    config = recipe.train
    # The main process owns out_dir: checked writable and locked before any work (encoding can take hours).
    owns_out_dir = int(os.environ.get("RANK", "0")) == 0
    lock = safety.run_lock(config.out_dir) if owns_out_dir else contextlib.nullcontext()
    with lock, session(config.device) as world, stop_requests() as stop_requested:
        run = setup(recipe, weights, world)
        try:
            for step in range(run.step, config.steps):
                run.window.append(train_step(run, step))
                run.step, run.position = step + 1, run.position + config.batch_size
                if run.step % config.log_every == 0 or run.step == config.steps:
                    report(run)
                if run.step % STOP_CHECK_EVERY == 0 and any_process(stop_requested(), world.device):
                    if run.window:  # log the steps since the last line before stopping
                        report(run)
                    save(run)
                    raise TrainingInterrupted(f"stopped at step {run.step}; the checkpoint is saved: "
                                              f"run the same command again to resume")
                if run.valid is not None and run.step % config.valid_every == 0:
                    run.log.write("valid", run.step, validate(run))
                if config.generate_every and run.step % config.generate_every == 0:
                    write_samples(run)
                if run.step % config.save_every == 0:
                    save(run)
            return finish(run)
        finally:
            run.log.close()


#: `train` under its public name, ``magnetkit.train_model`` (``magnetkit.train`` is this package).
train_model = train


def setup(recipe: Recipe, weights: Any, world: World) -> Run:
    """Token caches, modules, optimizer, EMA and logs; then the newest checkpoint, if any, is restored."""
    config, out_dir = recipe.train, Path(recipe.train.out_dir)
    check_parallelism(config, world, recipe)
    scheduler = build_component(recipe, "scheduler")
    objective = build_objective(recipe, scheduler)  # checks train.stage_weights before any encoding
    tokens = prepare_tokens(recipe, world, progress=config.progress)
    check_tokens_fit(recipe, tokens["train"])
    frames = int(recipe.model.segment_duration * tokens["train"].info.frame_rate)
    stream = TrainingStream(tokens["train"], frames, math.ceil(recipe.data.min_segment_ratio * frames),
                            scheduler, config.seed, config.cfg_dropout, config.continuation_masking)
    model, conditioner = build_modules(recipe, weights)
    autocast, param_dtype, scaler = precision(config, world.device)
    lm = wrap(MagnetLM(model, conditioner).to(world.device).train(), config.distributed, world, param_dtype)
    optimizer = build_optimizer(lm, config)
    ema = EMA(unwrap(lm), config.ema_decay) if config.ema_decay else None
    # Processes differ in dropout draws; each one's generator is saved in checkpoints.
    torch.manual_seed(generator(config.seed, PROCESS, world.rank).initial_seed())
    if world.is_main:
        ckpt.remove_leftovers(out_dir)
    latest, state, skipped = ckpt.newest_readable(out_dir, set_aside=world.is_main)
    start = 0 if latest is None else int(state["step"])
    log = MetricLog(out_dir, start, config.steps, enabled=world.is_main, tensorboard=config.tensorboard,
                    progress=config.progress)
    log.echo(f"data: train {describe(tokens['train'], stream)}"
             + (f"; valid {describe(tokens['valid'])}" if "valid" in tokens else ""))
    valid = tokens.get("valid")
    if valid is not None and len(valid) == 0:
        log.echo("no validation file could be encoded: validation is off")
        valid = None
    run = Run(recipe=recipe, config=config, world=world, lm=lm, optimizer=optimizer,
              lr_schedule=build_lr_schedule(optimizer, config), scaler=scaler, autocast=autocast, ema=ema,
              scheduler=scheduler, objective=objective, stream=stream, valid=valid, log=log, exporter=Exporter(recipe), out_dir=out_dir)
    for message in skipped:
        log.echo(message)
    if latest is not None:
        restore(run, latest, state)
    run.log.echo(summary(run, model, frames))
    return run


def check_parallelism(config: TrainConfig, world: World, recipe: Recipe) -> None:
    """The global batch must split evenly; options must fit the hardware and the model."""
    problems = []
    parts = world.size * config.grad_accum
    if config.batch_size % parts:
        problems.append(f"train.batch_size: {config.batch_size} is not a multiple of processes ({world.size}) "
                        f"x train.grad_accum ({config.grad_accum})")
    if config.distributed == "fsdp" and config.precision == "fp16" and world.device.type == "cuda":
        problems.append("train.precision: fp16 loss scaling is not supported with FSDP; use bf16")
    if config.export_audiocraft and recipe.conditioner.name != "t5":
        problems.append(f"train.export_audiocraft: audiocraft's format holds T5-conditioned models only "
                        f"(conditioner.name is {recipe.conditioner.name!r})")
    if problems:
        raise RecipeError(problems)


def precision(config: TrainConfig, device: torch.device) -> tuple[Callable, torch.dtype | None, torch.amp.GradScaler]:
    """Autocast, FSDP's parameter dtype and the loss scaler; the CPU always trains in fp32 (PITFALLS)."""
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[config.precision]
    if device.type != "cuda" or dtype is None:
        return contextlib.nullcontext, None, torch.amp.GradScaler(device.type, enabled=False)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype, scaler


def summary(run: Run, model: nn.Module, frames: int) -> str:
    """One line describing the run."""
    params = sum(p.numel() for p in model.parameters())
    config = run.config
    precision_used = config.precision if run.world.device.type == "cuda" else "fp32"
    where = "resuming at" if run.step else "starting at"
    return (f"training {params / 1e6:.2f}M parameters on {run.world.size} x {run.world.device.type} "
            f"({config.distributed if run.world.size > 1 or config.distributed == 'fsdp' else 'single process'}, "
            f"{precision_used}), global batch {config.batch_size} x {frames} frames, {where} step {run.step} "
            f"of {config.steps}; writing to {run.out_dir}")


# ================================================================================ one step
def train_step(run: Run, step: int) -> dict[str, Any]:
    """One optimizer step on this process's share of the global batch; returns its metrics."""
    config, world = run.config, run.world
    started = time.perf_counter()
    batches = [run.stream.rows(rows) for rows in micro_batches(run)]
    length = condition_length(run, [text for batch in batches for text in batch.texts])
    draw = run.objective.draw(config.seed, step, batches[0].codes.shape[-1])
    # The loss is normalised by the scored tokens of the whole global batch (see the module doc).
    tokens = all_sum(sum(run.objective.scored_tokens(b, draw) for b in batches).to(world.device, torch.float32))
    total = torch.zeros((), device=world.device)
    for index, batch in enumerate(batches):
        with gradient_sync(run.lm, sync=index == len(batches) - 1):
            ce = run.objective.loss_sum(run.lm, batch, draw, length, world.device, run.autocast)
            run.scaler.scale(ce * world.size / tokens.clamp(min=1)).backward()
        total += ce.detach()
    lr = run.optimizer.param_groups[0]["lr"]
    grad_norm = optimizer_step(run)
    if run.ema is not None and (step + 1) % config.ema_every == 0:
        run.ema.update(unwrap(run.lm))
    return {"loss": all_sum(total) / tokens.clamp(min=1), "grad_norm": grad_norm, "lr": lr,
            "seconds": time.perf_counter() - started}


def micro_batches(run: Run) -> list[range]:
    """This process's rows of the current global batch, in ``grad_accum`` micro-batches."""
    config, world = run.config, run.world
    per_process = config.batch_size // world.size
    per_micro = per_process // config.grad_accum
    first = run.position + world.rank * per_process
    return [range(first + m * per_micro, first + (m + 1) * per_micro) for m in range(config.grad_accum)]


def condition_length(run: Run, texts: list[str | None]) -> int:
    """The longest condition among ``texts`` of every process: the padding of the whole global batch.

    A text's length depends only on the text, so it is measured once (in eval mode: without word
    dropout, the longest it can be) and remembered.
    """
    conditioner = unwrap(run.lm).conditioner
    missing = [text for text in dict.fromkeys(texts) if text not in run.text_lengths]
    with torch.no_grad(), unsharded(conditioner), evaluating(conditioner):
        for text in missing:
            # .forward, not __call__: FSDP's hooks expect every process to run the same calls.
            run.text_lengths[text] = conditioner.forward([text]).embeddings.shape[1]
    return all_max(max(run.text_lengths[text] for text in texts), run.world.device)


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode for the duration, then back to its mode."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def build_objective(recipe: Recipe, scheduler: MaskingScheduler) -> Objective:
    """The recipe's training objective: Hybrid-MAGNeT's with a ``hybrid`` section (§3.4), else MAGNeT's (§3.1)."""
    model, weights = recipe.model, (recipe.train.stage_weights if recipe.train else None)
    if recipe.hybrid is None:
        return MaskedObjective(model.num_codebooks, model.mask_id, weights)
    return HybridObjective(recipe.hybrid, model.num_codebooks, model.mask_id, model.frame_rate, scheduler.span_len,
                           weights)


def optimizer_step(run: Run) -> torch.Tensor:
    """Unscale, clip, step AdamW and the schedule; return the gradient norm before clipping."""
    run.scaler.unscale_(run.optimizer)
    params = [p for group in run.optimizer.param_groups for p in group["params"]]
    norm = full_tensor(torch.nn.utils.clip_grad_norm_(params, run.config.max_grad_norm))
    run.scaler.step(run.optimizer)  # skipped by the fp16 scaler when gradients overflowed
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.lr_schedule.step()
    return norm


def report(run: Run) -> None:
    """Average the metrics since the last line and log them; a diverged loss stops the run."""
    window, run.window = run.window, []
    metrics = {"loss": sum(float(m["loss"]) for m in window) / len(window),
               "grad_norm": sum(float(m["grad_norm"]) for m in window) / len(window),
               "lr": window[-1]["lr"], "sec_per_step": sum(m["seconds"] for m in window) / len(window)}
    bad_step = safety.first_nonfinite(window, run.step)
    if bad_step is not None or not math.isfinite(metrics["loss"]):
        raise safety.diverged(bad_step or run.step, f"the loss is {metrics['loss']}", run.out_dir)
    run.log.write("train", run.step, metrics)
    run.log.advance(len(window), loss=metrics["loss"], lr=metrics["lr"])


# ================================================================================ validation
@contextlib.contextmanager
def eval_weights(run: Run) -> Iterator[None]:
    """The exported weights (the EMA, when there is one) in eval mode, for the duration."""
    run.lm.eval()
    try:
        with run.ema.applied(unwrap(run.lm)) if run.ema is not None else contextlib.nullcontext():
            yield
    finally:
        run.lm.train()


@torch.no_grad()
def validate(run: Run) -> dict[str, float]:
    """Masked-token cross-entropy on fixed validation crops, for every stage (and their mean)."""
    config, world, tokens = run.config, run.world, run.valid
    count = min(len(tokens), config.valid_items or len(tokens))
    # Every process runs as many batches (FSDP forwards are collective); the padding scores nothing.
    indices = list(range(world.rank, math.ceil(count / world.size) * world.size, world.size))
    batch_size = max(1, config.batch_size // world.size // config.grad_accum)
    sums = torch.zeros(2, run.recipe.model.num_codebooks, device=world.device)  # [ce, tokens] per stage
    # One padding for the whole set: the loss does not depend on how it is split into batches.
    length = condition_length(run, [entry.caption for entry in tokens.entries[:count]])
    with eval_weights(run):
        for stage in range(run.recipe.model.num_codebooks):
            for batch in valid_batches(tokens, indices, count, run.stream.frames, run.scheduler, config.seed,
                                       stage, batch_size):
                # Validation scores the masked objective alone (no prefix), stage by stage.
                ce = run.objective.loss_sum(run.lm, batch, StepDraw(stage), length, world.device, run.autocast)
                sums[0, stage] += ce.float()
                sums[1, stage] += (batch.spans & batch.valid).sum()
    ce, counted = all_sum(sums)
    per_stage = (ce / counted.clamp(min=1)).tolist()
    return {"loss": sum(per_stage) / len(per_stage), **{f"loss_q{k}": v for k, v in enumerate(per_stage)}}


# ================================================================================ checkpoints
def eval_state(run: Run) -> dict[str, torch.Tensor]:
    """Whole CPU tensors of the exported weights on the main process; every process must call it."""
    state = full_model_state(run.lm)
    if run.ema is not None:
        state.update(run.ema.full_state(keep=run.world.is_main))  # buffers, if any, come from the model
    return state


def training_state(run: Run) -> dict[str, Any]:
    """The plain dict a checkpoint stores (whole tensors on the main process); collective."""
    device = run.world.device
    rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    return {
        "step": run.step,
        "position": run.position,
        "model": full_model_state(run.lm),
        "optimizer": full_optimizer_state(run.lm, run.optimizer),
        "lr_schedule": run.lr_schedule.state_dict(),
        "grad_scaler": run.scaler.state_dict(),
        "ema": run.ema.state_dict(keep=run.world.is_main) if run.ema is not None else None,
        "rng": gather_objects(rng),
        "recipe": exported_recipe(run.recipe),
        "world_size": run.world.size,
    }


def save(run: Run) -> None:
    """Write the checkpoint of the current step (atomically) and drop the oldest; collective."""
    if run.saved_step == run.step:
        return
    state = training_state(run)
    weights = {**state["model"], **(state["ema"]["state"] if run.ema is not None else {})}
    check_finite(run, state)
    if run.world.is_main:
        model, conditioner = run.exporter.load(weights)

        def write(folder: Path) -> None:
            save_checkpoint(folder, model=model, conditioner=conditioner, recipe=state["recipe"])
            ckpt.save_state(folder, state)

        folder = ckpt.write_folder(ckpt.checkpoint_dir(run.out_dir, run.step), write)
        ckpt.prune(run.out_dir, run.config.keep_last)
        run.log.echo(f"saved {folder}")
    run.saved_step = run.step
    barrier()


def check_finite(run: Run, state: dict[str, Any]) -> None:
    """Refuse to checkpoint a diverged run: a non-finite loss since the last log line, or weight; collective."""
    bad_step = safety.first_nonfinite(run.window, run.step)
    bad = safety.nonfinite_tensors({"model": state["model"], "ema": (state["ema"] or {}).get("state") or {}})
    if not any_process(bad_step is not None or bool(bad), run.world.device):
        return
    if bad_step is not None:
        raise safety.diverged(bad_step, "the loss became NaN or infinite", run.out_dir)
    named = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise safety.diverged(run.step, f"weights are NaN or infinite ({named or 'on another process'})", run.out_dir)


def restore(run: Run, folder: Path, state: dict[str, Any] | None = None) -> None:
    """Continue from a checkpoint: weights, optimizer, schedule, scaler, EMA, step, data position, RNG.

    Settings changed since the checkpoint are applied and logged when the run can honour them
    (e.g. ``train.lr``), refused otherwise (see `safety.resume_changes`).
    """
    state = ckpt.load_state(folder) if state is None else state
    check_model_matches(run.recipe.model.model_dump(), state["recipe"].get("model"), str(folder))
    applied = safety.check_resume(state["recipe"], exported_recipe(run.recipe), folder)
    load_full_state(run.lm, run.optimizer, state["model"], state["optimizer"])
    run.lr_schedule.load_state_dict(state["lr_schedule"])
    if state["grad_scaler"]:  # empty when the run trained without loss scaling
        run.scaler.load_state_dict(state["grad_scaler"])
    if run.ema is not None and state["ema"] is not None:
        run.ema.load_state_dict(state["ema"])
    if len(state["rng"]) == run.world.size:
        rng = state["rng"][run.world.rank]
        torch.set_rng_state(rng["cpu"])
        if rng["cuda"] is not None and run.world.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], run.world.device)
    else:
        run.log.echo(f"resuming {state['world_size']} processes' run on {run.world.size}: dropout draws "
                     f"restart from the seed (everything else continues exactly)")
    run.step, run.position = state["step"], state["position"]
    run.start_step = run.saved_step = run.step
    if any(change.startswith(("train.lr", "train.warmup_steps", "train.steps", "train.betas", "train.weight_decay"))
           for change in applied):
        safety.apply_optimizer_settings(run.optimizer, run.lr_schedule, run.config)
    run.log.echo(f"resumed from {folder}")
    for change in applied:
        run.log.echo(f"resume applies a changed setting: {change}")


# ================================================================================ the end
def finish(run: Run) -> Path:
    """Validate and checkpoint the last step, then write the final model (and its audiocraft export)."""
    if run.valid is not None and run.step > run.start_step and run.step % run.config.valid_every != 0:
        run.log.write("valid", run.step, validate(run))
    save(run)
    weights = eval_state(run)
    target = run.out_dir / FINAL_MODEL_DIR
    if run.world.is_main:
        model, conditioner = run.exporter.load(weights)
        recipe = exported_recipe(run.recipe)
        ckpt.write_folder(target, lambda folder: save_checkpoint(folder, model=model, conditioner=conditioner,
                                                                 recipe=recipe))
        run.log.echo(f"final model: {target}  (try: magnetkit generate {target} \"a caption\")")
        if run.config.export_audiocraft:
            from magnetkit.train.export import export_run

            run.log.echo(f"audiocraft export: {export_run(run.recipe, model, conditioner, run.out_dir / AUDIOCRAFT_DIR)}")
    barrier()
    return target


def write_samples(run: Run) -> None:
    """Generate a few samples with the current (EMA) weights into ``<out_dir>/samples/step-N``; collective."""
    weights = eval_state(run)
    if run.world.is_main:
        if run.codec is None:
            run.codec = build_codec(run.recipe, run.world.device)
        model, conditioner = run.exporter.load(weights)
        texts = sample_texts(run.config, run.valid if run.valid is not None else run.stream.tokens)
        folder = run.out_dir / SAMPLES_DIR / f"step-{run.step:07d}"
        for path in generate_samples(run.recipe, model, conditioner, run.codec, texts, folder, run.world.device):
            run.log.echo(f"sample {path}")
    barrier()


# ================================================================================ signals
@contextlib.contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """SIGTERM or Ctrl-C asks the loop to checkpoint and stop; a second one acts as usual."""
    requested: list[int] = []
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        requested.append(signum)
        signal.signal(signum, previous[signum])

    can_install = hasattr(signal, "SIGTERM") and _in_main_thread()
    for sig in (signal.SIGTERM, signal.SIGINT) if can_install else ():
        previous[sig] = signal.signal(sig, handler)
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
